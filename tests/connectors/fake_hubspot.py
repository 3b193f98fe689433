"""A local HubSpot: the API endpoints the connector uses, records in memory, and faults.

A threaded HTTP server on a free port (the standard library's, which lets a fault
take a request and then drop the connection without answering). Request bodies are
checked against HubSpot's documented shapes: the client package's models."""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from hubspot.crm.contacts import (
    BatchInputSimplePublicObjectBatchInputUpsert,
)
from hubspot.crm.objects.notes import (
    PublicObjectSearchRequest,
    SimplePublicObjectInputForCreate,
)

TOKEN = "pat-test-token"
CONTACT_PROPERTIES = {
    "email", "firstname", "lastname", "company", "jobtitle", "phone", "hubspot_owner_id",
    "leadflow_id", "leadflow_score", "leadflow_segment", "utm_source", "utm_campaign",
}  # fmt: skip
NOTE_PROPERTIES = {"hs_note_body", "hs_timestamp", "leadflow_note_key"}
NOW = "2026-01-01T00:00:00.000Z"


@dataclass
class Fault:
    """What the next matching requests get instead of an answer."""

    kind: str  # "500", "429", "hang", "drop" (applied, then the connection closed)
    times: int
    path: str = ""
    retry_after: int = 1


@dataclass
class FakeHubSpot:
    owners: dict[str, str] = field(default_factory=dict)  # email -> owner id
    contacts: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> record
    notes: dict[str, dict[str, Any]] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)
    missing_properties: set[str] = field(default_factory=set)  # not defined in this portal
    requests: list[tuple[str, str]] = field(default_factory=list)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1001))
    _lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def fail(self, kind: str, times: int = 1, path: str = "", retry_after: int = 1) -> None:
        with self._lock:
            self.faults.append(Fault(kind, times, path, retry_after))

    def calls(self, path: str) -> int:
        return sum(1 for _, p in self.requests if p.rstrip("/") == path)

    def contact(self, email: str) -> dict[str, Any]:
        return next(c for c in self.contacts.values() if c["properties"]["email"] == email)

    def fault_for(self, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.times > 0 and path.startswith(fault.path):
                    fault.times -= 1
                    return fault
        return None

    def answer(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        """HubSpot's answer to one request: (status, JSON body)."""
        with self._lock:
            self.requests.append((method, path))
            if method == "GET" and path.startswith("/crm/v3/owners"):
                return 200, {"results": [_owner(e, i) for e, i in self.owners.items()]}
            if method == "POST" and path == "/crm/v3/objects/contacts/batch/upsert":
                return self._upsert(body)
            if method == "POST" and path == "/crm/v3/objects/notes/search":
                return self._search_notes(body)
            if method == "POST" and path == "/crm/v3/objects/notes":
                return self._create_note(body)
        return 404, _error(f"Unable to route {method} request to {path}", "OBJECT_NOT_FOUND")

    def _upsert(self, body: Any) -> tuple[int, Any]:
        _check(BatchInputSimplePublicObjectBatchInputUpsert, body)
        inputs = body["inputs"]
        if not 1 <= len(inputs) <= 100:
            return 400, _error("inputs must hold 1 to 100 records", "VALIDATION_ERROR")
        for item in inputs:
            if item.get("idProperty") != "email" or not item.get("id"):
                return 400, _error("idProperty email with an id is required", "VALIDATION_ERROR")
            unknown = sorted(
                set(item["properties"]) - (CONTACT_PROPERTIES - self.missing_properties)
            )
            if unknown:
                return 400, _error(
                    f'Property values were not valid: Property "{unknown[0]}" does not exist',
                    "VALIDATION_ERROR",
                )
        results = []
        for item in inputs:
            email = item["id"].lower()
            found = next(
                (c for c in self.contacts.values() if c["properties"]["email"] == email), None
            )
            if found is None:
                found = {"id": str(next(self._ids)), "properties": {}, "createdAt": NOW}
                self.contacts[found["id"]] = found
            found["properties"].update({**item["properties"], "email": email})
            results.append({**found, "updatedAt": NOW, "archived": False, "new": len(found) == 3})
        return 200, {"status": "COMPLETE", "results": results, "startedAt": NOW, "completedAt": NOW}

    def _search_notes(self, body: Any) -> tuple[int, Any]:
        _check(PublicObjectSearchRequest, body)
        [group] = body["filterGroups"]
        [condition] = group["filters"]
        name, value = condition["propertyName"], condition["value"]
        hits = [n for n in self.notes.values() if n["properties"].get(name) == value]
        return 200, {"total": len(hits), "results": [_record(n) for n in hits]}

    def _create_note(self, body: Any) -> tuple[int, Any]:
        _check(SimplePublicObjectInputForCreate, body)
        unknown = set(body["properties"]) - NOTE_PROPERTIES
        if unknown:
            return 400, _error(
                f'Property "{sorted(unknown)[0]}" does not exist', "VALIDATION_ERROR"
            )
        [association] = body["associations"]
        if association["to"]["id"] not in self.contacts:
            return 400, _error("association to an unknown contact", "VALIDATION_ERROR")
        note = {"id": str(next(self._ids)), "properties": body["properties"], "to": association}
        self.notes[note["id"]] = note
        return 201, _record(note)


def _check(model: type, body: Any) -> None:
    """The body has only the keys of HubSpot's model (camelCase, as documented)."""
    known = set(model.attribute_map.values())
    if not isinstance(body, dict) or set(body) - known:
        raise ValueError(f"{model.__name__} has no {sorted(set(body) - known)}")


def _record(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": item["id"],
        "properties": item["properties"],
        "createdAt": NOW,
        "updatedAt": NOW,
        "archived": False,
    }


def _owner(email: str, owner_id: str) -> dict[str, Any]:
    return {
        "id": owner_id,
        "email": email,
        "type": "PERSON",
        "archived": False,
        "createdAt": NOW,
        "updatedAt": NOW,
    }


def _error(message: str, category: str) -> dict[str, Any]:
    return {"status": "error", "message": message, "category": category}


def serve(fake: FakeHubSpot) -> ThreadingHTTPServer:
    """Serve ``fake`` on a free local port in a thread; ``fake.url`` is its base URL."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            self._handle("GET")

        def do_POST(self) -> None:
            self._handle("POST")

        def _handle(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            path = self.path.split("?")[0]
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                return self._send(
                    401, _error("Authentication credentials not found", "INVALID_AUTHENTICATION")
                )
            fault = fake.fault_for(path)
            if fault is not None and fault.kind == "500":
                return self._send(500, _error("internal error", "INTERNAL_ERROR"))
            if fault is not None and fault.kind == "429":
                headers = {"Retry-After": str(fault.retry_after)}
                return self._send(
                    429, _error("You have reached your secondly limit.", "RATE_LIMITS"), headers
                )
            if fault is not None and fault.kind == "hang":
                time.sleep(30)
                self.close_connection = True
                return None
            try:
                status, body = fake.answer(method, path, json.loads(raw) if raw else None)
            except (ValueError, KeyError, TypeError) as error:
                status, body = 400, _error(f"Invalid input JSON: {error}", "VALIDATION_ERROR")
            if fault is not None and fault.kind == "drop":
                self.close_connection = True
                return None
            return self._send(status, body)

        def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
