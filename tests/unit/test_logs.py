"""LOG_FORMAT=json: one JSON object per line, carrying the event id."""

import io
import json
import logging

from app.core.logs import configure_logging


def test_json_log_line_carries_the_event_id():
    handler = configure_logging("INFO", "json")
    stream = io.StringIO()
    handler.setStream(stream)
    logging.getLogger("app.core.worker").info("event %s done", "evt-1", extra={"event_id": "evt-1"})
    line = json.loads(stream.getvalue().strip().splitlines()[-1])
    assert line["message"] == "event evt-1 done" and line["event_id"] == "evt-1"
    assert line["level"] == "INFO" and line["logger"] == "app.core.worker"
    configure_logging("WARNING", "text")


def test_text_log_line_names_the_event():
    handler = configure_logging("INFO", "text")
    stream = io.StringIO()
    handler.setStream(stream)
    logging.getLogger("app.core.worker").info("done", extra={"event_id": "evt-2"})
    assert stream.getvalue().rstrip().endswith("done [event evt-2]")
    configure_logging("WARNING", "text")
