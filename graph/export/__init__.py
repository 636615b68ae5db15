"""Evidence export: graph files (GraphML, GEXF, node-link JSON, CSV/Parquet tables), STIX 2.1,
a standalone HTML graph, the written evidence report with its SHA-256 manifest, the cluster
table, and a redaction mode for sharing outside the team."""
