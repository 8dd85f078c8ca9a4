"""A bearer token read from a file that someone else rotates (client-go's cached file token source).

The kubelet rewrites a pod's projected token before it expires; a client that read the file
once would start failing with ``401 Unauthorized`` an hour later. client-go re-reads the file
every minute and after a 401; this source re-reads it whenever it *changed* — one ``stat`` per
request, far cheaper than a read, and it follows a rotation at once whatever the token's
lifetime — and after a 401. A failed read (the file is being replaced) keeps the token it had.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger("labctl.client")


class TokenFile:
    """The current content of a token file, re-read when the file changes or after a 401."""

    def __init__(self, path: Path | str, token: str = "") -> None:
        self.path = Path(path)
        self._token = token
        self._seen: tuple[int, int, int] | None = None  # (inode, mtime ns, size) of what we read

    def token(self) -> str:
        """The token to send now (re-read if the file was replaced since the last read)."""
        try:
            st = os.stat(self.path)  # follows the ..data symlink to the current generation
            seen = (st.st_ino, st.st_mtime_ns, st.st_size)
            if seen != self._seen:
                text = self.path.read_text().strip()
                if text:
                    self._token, self._seen = text, seen
        except OSError as err:  # mid-rotation: the previous token is still valid for a while
            log.debug("failed to re-read the token file %s: %s; keeping the previous token", self.path, err)
        return self._token

    def invalidate(self) -> None:
        """The server refused the token (401): read the file again before the next request."""
        self._seen = None
