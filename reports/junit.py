"""`junit.xml`: one test case per SLO per scenario, so any CI shows breaches as failed tests.

Every case carries its verdict, measured value and target as properties, passing ones too. A
suite's `time` is the run's length (its phases, once per variant); a case's is 0: a verdict is
computed from the records, not run, and CI tools that add case times would count the run twice."""

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
        properties = ET.SubElement(case, "properties")
        for key in ("verdict", "measured", "target", "interval"):
            value = verdict.get("status" if key == "verdict" else key)
            if value is not None:
                ET.SubElement(properties, "property", name=key, value=str(value))
        if verdict["status"] == "fail":
            failures += 1
            ET.SubElement(case, "failure", message=verdict["reason"], type="SLOBreached").text = verdict[
                "reason"
            ]
        elif verdict["status"] == "inconclusive":
            # JUnit has no third outcome: skipped, typed and worded, so CI shows it apart from
            # a pass; `gate --strict` fails the run on it.
            skipped += 1
            ET.SubElement(case, "skipped", message=f"inconclusive: {verdict['reason']}", type="Inconclusive")
        elif verdict["status"] == "skipped":
            skipped += 1
            ET.SubElement(case, "skipped", message=verdict["reason"])
    for fault in results.get("exercised", []):
        case = ET.SubElement(
            element,
            "testcase",
            classname=f"chaos.{results['scenario']}",
            name=f"fault_{fault['fault']}_exercised",
        )
        if not fault["exercised"]:
            failures += 1
            ET.SubElement(case, "failure", message=fault["basis"], type="NotExercised").text = fault["basis"]
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
    for case in element.iter("testcase"):
        case.set("time", "0")
    length = sum(float(seconds) for seconds in results.get("phases", {}).values())
    element.set("time", f"{length * len(results['variants']):.3f}")
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
    root.set("time", f"{sum(float(s.get('time', '0')) for s in root):.3f}")
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
