"""Report: what happened, for programs and people. The contract's JSON document (``document``), its text
(``text``), JUnit, HTML and ladder diagrams, and the record tables of the listing commands (messages,
events, sessions) in every machine format. May import base to rules; never run or cli."""
