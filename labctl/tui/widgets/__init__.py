"""Reusable widgets of the terminal UI: each draws one kind of thing, from data it is given.

They never reach the lab or the state model themselves; the screens hand them what to show.
"""
