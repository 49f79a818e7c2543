"""What users read: motif and region logos, and the self-contained HTML report."""
