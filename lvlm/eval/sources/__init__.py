"""Where a task's examples come from: one loading interface (``loaders``) over local original-format
files (``local``), the dataset hub (``hub``) and the built-in smoke sets (``smoke``), the shared record
conversion (``common``) and the seeded class-stratified sample (``sampling``). Nothing is re-exported."""
