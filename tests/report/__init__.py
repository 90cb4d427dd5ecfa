"""Tests of the study report (lvlm.report)."""
