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


def _one_record(fmt: str, log) -> str:
    handler = configure_logging("INFO", fmt)
    stream = io.StringIO()
    handler.setStream(stream)
    try:
        log(logging.getLogger("app.core.worker"))
    finally:
        configure_logging("WARNING", "text")
    return stream.getvalue()


FORGED = "r-1\n2026-12-05 06:00:00,000 INFO app.web: admin signed in\r\x1b[2J\x9b"


def test_text_log_line_escapes_control_characters_in_the_message_its_arguments_and_the_event_id():
    text = _one_record(
        "text", lambda log: log.warning("review %s quarantined\x1b[31m", FORGED, extra={"event_id": FORGED})
    )
    assert text.count("\n") == 1 and "\x1b" not in text and "\r" not in text and "\x9b" not in text
    assert "r-1\\n2026-12-05 06:00:00,000 INFO app.web: admin signed in\\r\\x1b[2J\\x9b" in text
    assert "quarantined\\x1b[31m" in text and text.rstrip().endswith("signed in\\r\\x1b[2J\\x9b]")


def test_text_log_traceback_keeps_its_lines_but_escapes_line_breaks_in_the_exception_message():
    def log(logger):
        try:
            try:
                raise KeyError("inner\nforged line")
            except KeyError:
                raise ValueError(FORGED) from None
        except ValueError:
            logger.exception("failed")

    text = _one_record("text", log)
    assert text.splitlines()[1] == "Traceback (most recent call last):"
    assert "ValueError: r-1\\n2026-12-05" in text and "\x1b" not in text
    assert not any(line.startswith("2026-12-05 06:00:00") for line in text.splitlines())


def test_text_log_line_keeps_a_tab():
    assert "a\tb" in _one_record("text", lambda log: log.warning("a\tb"))


def test_json_log_line_already_escapes_control_characters():
    text = _one_record("json", lambda log: log.warning("review %s", FORGED, extra={"event_id": FORGED}))
    assert text.count("\n") == 1 and "\x1b" not in text
    line = json.loads(text)
    assert line["message"] == f"review {FORGED}" and line["event_id"] == FORGED
