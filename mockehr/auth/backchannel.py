"""Back-channel logout delivery: POST logout_token to each app's backchannel_logout_uri.

Each delivery runs in a daemon thread with a short timeout, so a receiver that is down or slow
never holds up the logout page; every delivery is an audit event (`backchannel-logout`):
success with the HTTP status, or failure with the status or the network error. Redirects are
not followed (the spec wants a 200 from the URI itself). Tests wait with `Notifier.wait()`.
"""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from dataclasses import dataclass
from urllib.parse import urlencode

TIMEOUT = 3.0  # seconds per delivery


@dataclass(frozen=True)
class Delivery:
    client_id: str
    uri: str
    logout_token: str
    sid: str | None
    user: str | None


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None  # the 3xx itself is the answer (an HTTPError): a failed delivery


class Notifier:
    def __init__(self, audit, timeout: float = TIMEOUT):
        self.audit = audit
        self.timeout = timeout
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._opener = urllib.request.build_opener(_NoRedirects)

    def send(self, deliveries: list[Delivery]) -> None:
        """Start every delivery in the background; returns at once."""
        for delivery in deliveries:
            thread = threading.Thread(target=self._deliver, args=(delivery,), daemon=True,
                                      name=f"backchannel-logout {delivery.client_id}")
            with self._lock:
                self._threads = [t for t in self._threads if t.is_alive()]
                self._threads.append(thread)
            thread.start()

    def wait(self, timeout: float = 10.0) -> None:
        """Until the deliveries started so far are done (for tests and an orderly stop)."""
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout)

    def _deliver(self, delivery: Delivery) -> None:
        body = urlencode({"logout_token": delivery.logout_token}).encode()
        request = urllib.request.Request(delivery.uri, data=body, method="POST", headers={
            "Content-Type": "application/x-www-form-urlencoded", "Cache-Control": "no-store"})
        who = {"client": delivery.client_id, "uri": delivery.uri, "sid": delivery.sid, "user": delivery.user}
        try:
            with self._opener.open(request, timeout=self.timeout) as answer:
                status = answer.status
        except urllib.error.HTTPError as exc:
            exc.close()
            self.audit.record("backchannel-logout", "failure", **who, status=exc.code,
                              reason=f"the app's backchannel_logout_uri answered {exc.code} (it should answer 200)")
            return
        except (OSError, ValueError) as exc:  # refused, unreachable, timed out, bad URL
            reason = getattr(exc, "reason", None) or exc
            self.audit.record("backchannel-logout", "failure", **who,
                              reason=f"could not deliver the logout token: {reason}")
            return
        if 200 <= status < 300:
            self.audit.record("backchannel-logout", **who, status=status,
                              reason="logout token delivered")
        else:
            self.audit.record("backchannel-logout", "failure", **who, status=status,
                              reason=f"the app's backchannel_logout_uri answered {status} (it should answer 200)")
