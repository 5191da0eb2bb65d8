"""`junit.xml`: one test case per SLO per scenario, so any CI shows breaches as failed tests."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any


def suite(results: dict[str, Any]) -> ET.Element:
    """A <testsuite> for one scenario: a case per SLO of the system under test, and the bite check."""
    main = results["variants"][results["main"]]
    element = ET.Element("testsuite", name=f"chaos.{results['scenario']}")
    failures = skipped = 0
    for verdict in main["verdicts"]:
        case = ET.SubElement(
            element, "testcase", classname=f"chaos.{results['scenario']}", name=verdict["sli"]
        )
        if verdict["status"] == "fail":
            failures += 1
            ET.SubElement(case, "failure", message=verdict["reason"], type="SLOBreached").text = verdict[
                "reason"
            ]
        elif verdict["status"] == "skipped":
            skipped += 1
            ET.SubElement(case, "skipped", message=verdict["reason"])
    bite = results["bite"]
    case = ET.SubElement(
        element, "testcase", classname=f"chaos.{results['scenario']}", name="fault_bites_control"
    )
    if bite["bit"] is False:
        failures += 1
        ET.SubElement(case, "failure", message=bite["reason"], type="DidNotBite").text = bite["reason"]
    elif bite["bit"] is None:
        skipped += 1
        ET.SubElement(case, "skipped", message=bite["reason"])
    element.set("tests", str(len(element)))
    element.set("failures", str(failures))
    element.set("skipped", str(skipped))
    element.set("errors", "0")
    return element


def render(all_results: list[dict[str, Any]]) -> str:
    root = ET.Element("testsuites", name="chaos-harness")
    for results in all_results:
        root.append(suite(results))
    for attribute in ("tests", "failures", "skipped", "errors"):
        root.set(attribute, str(sum(int(s.get(attribute, "0")) for s in root)))
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
