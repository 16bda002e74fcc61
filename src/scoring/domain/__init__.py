"""The pure decision logic: scorer, limit policy, reasons, decisions (no web, tracking or warehouse)."""
