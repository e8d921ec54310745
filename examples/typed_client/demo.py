"""Log an event and read recommendations through the generated, typed client.

python -m examples.typed_client.demo --url http://127.0.0.1:8000 --key rk_... --user 1 --content 2571
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass

from examples.typed_client.recengine_client import EventInput, LogEvent, RecengineClient, Recommendations


@dataclass
class Outcome:
    """What the example did: the logged event and the recommendations read after it."""

    logged: LogEvent
    recommendations: Recommendations


def log_and_recommend(url: str, key: str, *, user_id: str, content_id: str, count: int = 5) -> Outcome:
    """Log a `like` of `content_id` by `user_id`, then read that user's recommendations."""
    headers = {"Authorization": f"Bearer {key}"}
    with RecengineClient(url=f"{url.rstrip('/')}/graphql", headers=headers) as client:
        logged = client.log_event(EventInput(user_id=user_id, content_id=content_id, event_type="like"))
        recommendations = client.recommendations(user_id=user_id, count=count)
    return Outcome(logged=logged, recommendations=recommendations)


def main() -> None:
    """Command line: print the event id and the recommended titles."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("RECENGINE_URL", "http://127.0.0.1:8000"))
    parser.add_argument(
        "--key", default=os.environ.get("RECENGINE_API_KEY"), required="RECENGINE_API_KEY" not in os.environ
    )
    parser.add_argument("--user", default="1")
    parser.add_argument("--content", default="2571")
    parser.add_argument("--count", type=int, default=5)
    args = parser.parse_args()
    outcome = log_and_recommend(args.url, args.key, user_id=args.user, content_id=args.content, count=args.count)
    logged = outcome.logged.log_event
    event = logged.event
    print(f"logged event {event.id} ({event.event_type} {event.content_id}); duplicate={logged.duplicate}")
    for item in outcome.recommendations.recommendations.items:
        title = item.content.title if item.content else "?"
        print(f"{item.rank:2d}. {title}  ({item.score:.3f}) {item.explanation}")


if __name__ == "__main__":
    main()
