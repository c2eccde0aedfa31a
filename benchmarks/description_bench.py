"""What detailed descriptions cost one portal: redaction in the view, and the guard's
withholding pass, on a store `bridge demo` wrote.

    bridge demo --entries 20000 --out demo-site
    python benchmarks/description_bench.py [--config demo-site/bridge.toml] [--repeat 3]

For every client it builds the view with descriptions "summary" (no redaction) and
"detailed" (redaction), and times the guard's description pass (hidden values, then
withholding). Prints a table and, as the last line, one JSON object per client. CPU
seconds (process time), best of --repeat, so other jobs on a shared box count less.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bridge import leakguard  # noqa: E402
from bridge.config import load_config  # noqa: E402
from bridge.models import utcnow  # noqa: E402
from bridge.redaction import ReviewLog  # noqa: E402
from bridge.store import Store  # noqa: E402
from bridge.views import build_portal_view  # noqa: E402


def best(fn, repeat: int):  # type: ignore[no-untyped-def]
    times, out = [], None
    for _ in range(repeat):
        start = time.process_time()
        out = fn()
        times.append(time.process_time() - start)
    return min(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="demo-site/bridge.toml")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    config = load_config(args.config)
    store = Store(config.store.url)
    now = utcnow()
    results = []
    for client in config.clients:
        summary = client.model_copy(update={"visibility": client.visibility.model_copy(
            update={"descriptions": "summary", "view": "realtime"})})
        detailed = client.model_copy(update={"visibility": client.visibility.model_copy(
            update={"descriptions": "detailed", "view": "realtime"})})
        t_sum, _ = best(lambda: build_portal_view(store, config, summary, now=now, previous_snapshot=None), args.repeat)
        review = ReviewLog()
        t_det, view = best(lambda: build_portal_view(store, config, detailed, now=now, previous_snapshot=None,
                                                     review=ReviewLog()), args.repeat)
        t_hidden, hidden = best(lambda: leakguard.hidden_values(store, config, detailed, view=view), args.repeat)
        t_hold, _ = best(lambda: leakguard.withhold_descriptions(view, hidden, review), args.repeat)
        redacted = len({d for d in (r.description for r in view.timesheet) if d and "[removed]" in d})
        results.append({
            "client": client.key, "entries": len(view.timesheet), "view_summary_s": round(t_sum, 3),
            "view_detailed_s": round(t_det, 3), "redaction_s": round(t_det - t_sum, 3),
            "hidden_values_s": round(t_hidden, 3), "withhold_s": round(t_hold, 3),
            "distinct_redacted_texts": redacted,
        })
    cols = list(results[0]) if results else []
    print("  ".join(cols))
    for r in results:
        print("  ".join(str(r[c]) for c in cols))
    print(json.dumps(results))
    store.close()


if __name__ == "__main__":
    main()
