"""`make chaos`: several taskfarm server hosts behind HAProxy, on one machine, put through
crashes and restarts while workers finish a run, and a table of what came of it.

Each server host is a network namespace of its own with an address on a bridge; HAProxy, in
the machine's own namespace, spreads the workers' requests over them and checks `/readyz`.
Everything the harness makes (namespaces, the bridge, processes, files) is removed when it
ends, also when it is interrupted. Traffic stays on the bridge's private addresses.
"""
