"""Generated protobuf schema (``tools/gen_protobuf_schema.py``); a package so ``schema.json.gz`` ships as package data."""
