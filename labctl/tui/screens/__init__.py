"""The views (one module each, one Textual mode each) and the screens over them (details, dialogs)."""
