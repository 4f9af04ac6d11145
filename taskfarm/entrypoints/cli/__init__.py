"""The command line: `taskfarm` and, for people following the old docs, `adminTF`."""
