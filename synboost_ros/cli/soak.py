"""``synboost soak``: the node under a steady camera for N minutes; one JSON summary."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from synboost_ros.cli.common import parse_size

DEFAULT_RSS_SLOPE_LIMIT = 10.0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``soak`` command."""
    parser = subparsers.add_parser(
        "soak",
        help="run anomaly_node under a camera for N minutes; summarise losses, latency, memory",
        description="Starts anomaly_node as a child process (python -m synboost_ros.ros.node), "
        "publishes rgb8 frames at --rate, subscribes every output reliably, and prints frames "
        "sent / in / out / dropped / bad / lost, per-output completeness, e2e latency as the "
        "node and as the subscriber see it, and the node's RSS with its slope. Exit status 1 "
        "when a check fails: a processed frame's output missing, the accounting identity "
        "broken, RSS slope over --rss-slope-limit, or an unclean exit.",
    )
    parser.add_argument("--rate", type=float, default=10.0, help="camera rate in Hz (10)")
    parser.add_argument("--size", type=parse_size, default=(480, 640), help="HxW (480x640)")
    parser.add_argument("--qos", choices=("reliable", "best_effort"), default="reliable")
    parser.add_argument("--minutes", type=float, default=1.0, help="how long to drive (1)")
    parser.add_argument(
        "-p",
        "--param",
        action="append",
        default=[],
        metavar="NAME:=VALUE",
        help="a node parameter, e.g. random_weights:=true; repeatable",
    )
    parser.add_argument(
        "--stalled-subscriber",
        action="store_true",
        help="also subscribe every image output (reliable, keep all) and never read",
    )
    parser.add_argument(
        "--rss-slope-limit",
        type=float,
        default=DEFAULT_RSS_SLOPE_LIMIT,
        help=f"MB/min over the run's second half (default {DEFAULT_RSS_SLOPE_LIMIT:g})",
    )
    parser.add_argument(
        "--log", type=Path, default=Path("soak_node.log"), help="the node's output (soak_node.log)"
    )
    parser.add_argument("--json", action="store_true", help="print the summary as one line")
    parser.set_defaults(func=_soak)


def _soak(args: argparse.Namespace) -> int:
    if args.rate <= 0 or args.minutes <= 0:
        raise ValueError("--rate and --minutes must be > 0")
    from synboost_ros.demo.soak import SoakSettings, run_soak

    settings = SoakSettings(
        rate_hz=args.rate,
        size=args.size,
        qos=args.qos,
        duration_s=args.minutes * 60.0,
        node_params=tuple(args.param),
        stalled_subscriber=args.stalled_subscriber,
        log_path=args.log,
    )
    summary = run_soak(settings, args.rss_slope_limit)
    print(json.dumps(summary) if args.json else json.dumps(summary, indent=2))
    return 0 if all(summary["checks"].values()) else 1
