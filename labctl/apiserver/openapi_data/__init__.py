"""Generated OpenAPI v3 documents (``tools/gen_openapi.py``); a package so the ``.json.gz`` files ship as package data."""
