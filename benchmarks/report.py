"""The benchmark report: comparisons, JSON, and a readable table."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from benchmarks.stats import ratio

HOPS = (("pathway", "hop1"), ("referrals", "hop2"), ("notifications", "hop3"))


def _phase(phases: list[dict[str, Any]], offered: Any) -> dict[str, Any] | None:
    return next((p for p in phases if p["offered"] == offered), None)


def compare(pipeline: dict[str, Any], baseline: dict[str, Any]) -> dict[str, Any]:
    """Carepath against both raw relay chains: throughput per hop and latency, as ratios.

    A ratio is Carepath / raw: below 1 for throughput means Carepath is slower; above 1 for
    latency means Carepath takes longer. ``throughput_at_saturation`` and
    ``latency_at_offered_rate`` compare with the per-message (``send_and_wait``) relay;
    the ``..._batched`` keys with the batched relay (``getmany``, one flush per batch).
    """
    out: dict[str, Any] = {"note": "ratio = carepath / raw relay (per-message relay; the "
                                   "*_batched keys: the batched relay)"}
    tp, lat = _against(pipeline, baseline["phases"])
    if tp:
        out["throughput_at_saturation"] = tp
    out["latency_at_offered_rate"] = lat
    batched = baseline.get("batched")
    if batched:
        tp_b, lat_b = _against(pipeline, batched["phases"])
        if tp_b:
            out["throughput_at_saturation_batched"] = tp_b
        out["latency_at_offered_rate_batched"] = lat_b
    return out


def _against(pipeline: dict[str, Any], raw_phases: list[dict[str, Any]]
             ) -> tuple[dict[str, Any], dict[str, Any]]:
    tp: dict[str, Any] = {}
    cp_sat = _phase(pipeline["phases"], "saturation")
    raw_sat = _phase(raw_phases, "saturation")
    if cp_sat and raw_sat:
        for name, hop in HOPS:
            c = cp_sat["hop_busy_rate"][f"{name}_msgs_per_s"]
            r = raw_sat["hop_busy_rate"][f"{hop}_msgs_per_s"]
            tp[name] = {"carepath_msgs_per_s": c, "raw_msgs_per_s": r, "ratio": ratio(c, r)}
        c = cp_sat["throughput"]["episodes_completed_per_s"]
        r = raw_sat["throughput"]["end_to_end_msgs_per_s"]
        tp["end_to_end"] = {"carepath_msgs_per_s": c, "raw_msgs_per_s": r, "ratio": ratio(c, r)}
    lat: dict[str, Any] = {}
    for cp in pipeline["phases"]:
        if isinstance(cp["offered"], str):  # saturation, or the intake HTTP phase
            continue
        raw = _phase(raw_phases, cp["offered"])
        if raw is None:
            continue
        entry: dict[str, Any] = {"kept_up": {"carepath": cp.get("kept_up"),
                                             "raw": raw.get("kept_up")}}
        pairs = [("end_to_end", cp["latency"]["intake_to_notification"],
                  raw["latency"]["end_to_end"])]
        pairs += [(name, cp["hop_latency"][name], raw["hop_latency"][hop])
                  for name, hop in HOPS]
        for label, c_lat, r_lat in pairs:
            entry[label] = {
                q: {"carepath_ms": c_lat.get(f"{q}_ms"), "raw_ms": r_lat.get(f"{q}_ms"),
                    "ratio": ratio(c_lat.get(f"{q}_ms"), r_lat.get(f"{q}_ms"))}
                for q in ("p50", "p99")
            }
        lat[f"{cp['offered']:g}/s"] = entry
    return tp, lat


def write(report: dict[str, Any], out_dir: Path) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / "report.json"
    txt_path = out_dir / "report.txt"
    json_path.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    txt_path.write_text(render(report))
    return json_path, txt_path


# ---------------------------------------------------------------- text rendering


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h)
              for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) if i == 0 else h.rjust(w)
                     for i, (h, w) in enumerate(zip(headers, widths, strict=True)))
    rule = "  ".join("-" * w for w in widths)
    body = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                      for i, (c, w) in enumerate(zip(row, widths, strict=True)))
            for row in cells]
    return "\n".join([line, rule, *body])


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        if value >= 1000:
            return f"{value:,.0f}"
        if value >= 100:
            return f"{value:.0f}"
        return f"{value:.1f}" if value >= 1 else f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _lat(summary: dict[str, Any]) -> str:
    if not summary.get("count"):
        return "-"
    return "/".join(_fmt(summary[f"{q}_ms"]) for q in ("p50", "p95", "p99", "max"))


def _offered(value: Any) -> str:
    if isinstance(value, str):
        return "intake HTTP" if value.startswith("intake HTTP") else value
    return f"{value:g}/s"


def render(report: dict[str, Any]) -> str:
    parts: list[str] = []
    m = report.get("machine", {})
    v = m.get("versions", {})
    parts.append(f"Carepath benchmark  {report.get('started_at', '')}")
    parts.append(f"command: {report.get('command', '')}")
    if m:
        parts.append(
            f"machine: {m['cpu_model']}, {m['logical_cores']} cores ({m['usable_cores']} usable"
            f"{', virtualized' if m.get('virtualized') else ''}), {m['memory_gb']} GB, {m['os']}; "
            f"load average at start {m['load_average_at_start']}"
        )
        parts.append(
            "versions: " + ", ".join(f"{k} {val}" for k, val in v.items())
            + f"; git {m['git']['commit']} "
            f"(+{m['git']['uncommitted_changes_outside_benchmarks']} uncommitted files)"
        )
    s = report.get("settings", {})
    if s:
        parts.append("settings: " + "; ".join(f"{k}={val}" for k, val in s.items()))
    parts.append(
        "note: a shared 2-core machine; Kafka, Redis, the services, the load generator and "
        "other engineers' tests all compete for the same cores."
    )

    if "engine" in report:
        e = report["engine"]
        parts.append(f"\n1. ENGINE  one core (pinned to cpu {e['core']}), {e['episodes']:,} "
                     f"episodes of the mix, median of {e['repeats']} passes; mean "
                     f"{e['mean_recommendations']} recommendations per episode")
        parts.append(table(
            ["what", "per second", "µs each"],
            [["evaluate(episode, profile)", e["evaluate"]["per_second"],
              e["evaluate"]["us_per_op"]],
             ["parse_episode + evaluate", e["parse_evaluate"]["per_second"],
              e["parse_evaluate"]["us_per_op"]],
             ["pathway handler CPU (decode, fold, build events)",
              e["handler_cpu"]["per_second"], e["handler_cpu"]["us_per_op"]]],
        ))

    if "pipeline" in report:
        p = report["pipeline"]
        parts.append(f"\n2. PIPELINE  {p['path']}; services log at {p['log_level']}")
        rows = []
        for ph in p["phases"]:
            t = ph["throughput"]
            rows.append([_offered(ph["offered"]), ph["episodes"], t["offered_per_s"],
                         t["episodes_evaluated_per_s"], t["referrals_created_per_s"],
                         t["webhooks_delivered_per_s"], t["episodes_completed_per_s"],
                         ph.get("kept_up"), ph["complete"]])
        parts.append(table(["offered", "episodes", "sent/s", "evaluated/s", "referrals/s",
                            "webhooks/s", "episodes done/s", "kept up", "complete"], rows))
        parts.append("rates: count / (last output - first send) over the phase; kept up: "
                     "finished at >= 90% of the offered rate (if NO, a queue built up and the "
                     "latencies below are mostly waiting time)")
        rows = []
        for ph in p["phases"]:
            lat = ph["latency"]
            rows.append([_offered(ph["offered"]), _lat(lat["intake_to_recommendation"]),
                         _lat(lat["intake_to_referral"]), _lat(lat["intake_to_notification"])])
        parts.append("\nlatency, ms (p50/p95/p99/max) from the episode's ce_time")
        parts.append(table(["offered", "-> recommendation", "-> referral created",
                            "-> webhook received"], rows))
        rows = []
        for ph in p["phases"]:
            h = ph["hop_latency"]
            b = ph["hop_busy_rate"]
            rows.append([_offered(ph["offered"]), _lat(h["pathway"]), _lat(h["referrals"]),
                         _lat(h["notifications"]), b["pathway_msgs_per_s"],
                         b["referrals_msgs_per_s"], b["notifications_msgs_per_s"]])
        parts.append("\nper hop: latency ms (p50/p95/p99/max) and busy rate (input msgs/s)")
        parts.append(table(["offered", "pathway", "referrals", "notifications",
                            "pathway/s", "referrals/s", "notif./s"], rows))
        for ph in p["phases"]:
            if "intake_http" in ph:
                h = ph["intake_http"]
                parts.append(f"\nintake HTTP ({ph['offered']}; Idempotency-Key set): "
                             f"{h['accepted']:,} accepted at {_fmt(h['accepted_per_s'])}/s, "
                             f"{h['errors']} errors; response ms p50/p95/p99/max "
                             f"{_lat(h['response_latency'])}")

    if "baseline" in report:
        b = report["baseline"]
        pr = b["producer"]
        parts.append(f"\n3. BASELINE  raw aiokafka on the same broker; relay: "
                     f"{b['relay']['discipline']}; {b['relay']['hops']} hops chained, output "
                     f"bytes per hop {b['relay']['output_bytes_per_hop']}")
        parts.append(table(
            ["raw producer (episode.submitted records)", "msgs/s", "p50 ms", "p99 ms"],
            [["pipelined send()", pr["pipelined_msgs_per_s"], None, None],
             ["send_and_wait() one at a time", pr["send_and_wait_msgs_per_s"],
              pr["send_and_wait_latency"]["p50_ms"], pr["send_and_wait_latency"]["p99_ms"]]],
        ))
        pp = b.get("publish_patterns")
        if pp:
            parts.append(f"\none message's publishes ({pp['value_bytes']} B records), "
                         "median ms: k records awaited one by one vs sent together")
            rows = []
            for linger in (2, 0):
                for k in (1, 2, 9):
                    val = pp.get(f"linger{linger}_k{k}")
                    if val:
                        rows.append([f"linger_ms={linger}, k={k}",
                                     val["awaited_one_by_one_p50_ms"],
                                     val["sent_together_p50_ms"]])
            parts.append(table(["records per message", "one by one", "together"], rows))
            parts.append("offset commit per message, ms p50/p95/p99/max: "
                         + _lat(pp["commit_per_message"]))
        relays = [("raw relay chain (send_and_wait per message)", b["phases"])]
        if "batched" in b:
            relays.append((f"batched raw relay chain ({b['batched']['discipline']})",
                           b["batched"]["phases"]))
        for title, relay_phases in relays:
            rows = []
            for ph in relay_phases:
                h = ph["hop_latency"]
                r = ph["hop_busy_rate"]
                rows.append([_offered(ph["offered"]), ph["messages"], ph.get("kept_up"),
                             ph["throughput"]["end_to_end_msgs_per_s"],
                             _lat(ph["latency"]["end_to_end"]), _lat(h["hop1"]),
                             _lat(h["hop2"]), _lat(h["hop3"]), r["hop1_msgs_per_s"],
                             r["hop2_msgs_per_s"], r["hop3_msgs_per_s"], ph["complete"]])
            parts.append(f"\n{title}: latency ms (p50/p95/p99/max), busy rate msgs/s")
            parts.append(table(["offered", "msgs", "kept up", "e2e/s", "end to end", "hop1",
                                "hop2", "hop3", "hop1/s", "hop2/s", "hop3/s", "complete"],
                               rows))

    if "comparison" in report:
        c = report["comparison"]
        for suffix, which in (("", "raw relay (send_and_wait per message)"),
                              ("_batched", "batched raw relay (getmany, one flush per batch)")):
            tp = c.get(f"throughput_at_saturation{suffix}", {})
            lat_by_rate = c.get(f"latency_at_offered_rate{suffix}", {})
            if not tp and not lat_by_rate:
                continue
            parts.append(f"\nCOMPARISON  carepath / {which}")
            if tp:
                parts.append(table(
                    ["throughput at saturation", "carepath msgs/s", "raw msgs/s", "ratio"],
                    [[k, val["carepath_msgs_per_s"], val["raw_msgs_per_s"], val["ratio"]]
                     for k, val in tp.items()],
                ))
            rows = []
            for rate_label, entry in lat_by_rate.items():
                kept = entry.get("kept_up", {})
                label = rate_label + ("" if kept.get("carepath") else " *")
                for hop, qs in entry.items():
                    if hop == "kept_up":
                        continue
                    rows.append([label, hop, qs["p50"]["carepath_ms"], qs["p50"]["raw_ms"],
                                 qs["p50"]["ratio"], qs["p99"]["carepath_ms"],
                                 qs["p99"]["raw_ms"], qs["p99"]["ratio"]])
            if rows:
                parts.append("")
                parts.append(table(["offered", "latency of", "carepath p50", "raw p50",
                                    "ratio", "carepath p99", "raw p99", "ratio"], rows))
                parts.append("* Carepath did not keep up with this rate: its latencies there "
                             "are queueing delays, and the ratio mostly restates the "
                             "throughput ratio")

    mem_rows = []
    mems: list[tuple[str, Any]] = [(section, report[section]["memory"])
                                   for section in ("pipeline", "baseline")
                                   if section in report]
    if "baseline" in report and "batched" in report["baseline"]:
        mems.append(("baseline", report["baseline"]["batched"]["memory"]))
    if "backfill" in report:
        mems.append(("backfill", report["backfill"]["memory"]))
    for section, mem in mems:
        for name, val in mem["processes"].items():
            mem_rows.append([f"{section}: {name}", val["start_mb"], val["peak_mb"],
                             val["end_mb"], val["cpu_seconds"]])
    if mem_rows:
        parts.append("\n4. MEMORY  RSS sampled every 0.25 s during the run (psutil); CPU seconds "
                     "used in the same window")
        parts.append(table(["process", "start MB", "peak MB", "end MB", "CPU s"], mem_rows))
        if "pipeline" in report:
            mem = report["pipeline"]["memory"]
            parts.append(f"pipeline window {mem['window_s']} s; machine CPU "
                         f"{mem['machine_cpu_percent_all_cores']}% of all cores on average")

    if "backfill" in report:
        bf = report["backfill"]
        pw = bf["pathway"]
        done = "all" if bf["complete"] else f"{bf['care_plans_updated']:,} of"
        parts.append(f"\nBACKFILL  {bf['episodes']:,} stored episodes re-evaluated under "
                     f"profile {bf['profile']} ({bf['command']}); {done} "
                     f"{bf['episodes']:,} care plans updated")
        parts.append(table(
            ["stage", "episodes/s", "seconds from start"],
            [["pathway: recommendations published", pw["episodes_per_s"],
              pw["seconds_to_last_recommendation"]],
             ["referrals: care plans updated", bf["episodes_per_s"],
              bf["seconds_to_last_care_plan"]]],
        ))
        if not bf["complete"]:
            parts.append(f"not complete within the budget of {bf['max_seconds']} s (or "
                         "stalled): at the rate measured all of them would take "
                         f"{bf['projected_seconds_for_all']} s")
        parts.append(f"seeding the stored episodes took {bf['seed_seconds']} s (not counted)")

    if "redis_memory" in report:
        rm = report["redis_memory"]
        parts.append(f"\nREDIS MEMORY  {rm['bytes_per_episode']} bytes per episode "
                     f"({rm['total_bytes']:,} bytes in {rm['keys']:,} keys for "
                     f"{rm['episodes']:,} episodes; {rm['method']})")
        parts.append(table(["key family", "keys", "bytes", "bytes/episode"],
                           [[name, v["keys"], v["bytes"], v["bytes_per_episode"]]
                            for name, v in rm["by_family"].items()]))

    if "profile" in report:
        pf = report["profile"]
        parts.append(f"\n5. PROFILE  {pf['note']}")
        rows = []
        pauses = []
        for svc, secs in pf["sections"].items():
            for name, val in secs.items():
                if "mean_ms" not in val:  # not a timer: the long GC pauses, listed below
                    continue
                rows.append([svc, name, val.get("calls", val.get("samples")),
                             val["mean_ms"], val.get("max_ms", "")])
            pauses += [[svc, at, ms] for at, ms
                       in secs.get("gc_long_pauses", {}).get("unix_s_and_ms", [])]
        parts.append(table(["service", "section", "calls", "mean ms", "max ms"], rows))
        if pauses:
            parts.append("\ngarbage-collector pauses over 5 ms (unix time, ms)")
            parts.append(table(["service", "at", "ms"], pauses))
        for svc, top in pf.get("cprofile_top", {}).items():
            parts.append(f"\n{svc}: top functions by own CPU time (cProfile)")
            parts.append(table(["function", "calls", "own s", "cumulative s"],
                               [[t["function"], t["calls"], t["tottime_s"], t["cumtime_s"]]
                                for t in top]))
    if "burst" in report:
        from benchmarks.burst import render as render_burst

        parts.extend(render_burst(report["burst"]))
    return "\n".join(parts) + "\n"
