"""Helpers the test modules share: plain constants, functions and classes (no tests, no fixtures).

Fixtures live in conftest.py files; everything a test module needs from elsewhere comes from here, never from
another test module or a conftest.py. Import a helper as `from support.<module> import <name>`: `tests/` is on
sys.path because pytest inserts the folder of the top-level `tests/conftest.py` (its default "prepend" import
mode), the same way it imports the test packages themselves.

- `gocardless`: GoCardless's published signature vector, events, signed deliveries, a bigger scenario
- `sage`: a cash receipt request for the bundled company, an agent client for the stand-ins, their page size
- `played_month`: the 'small' scenario played through the stand-ins and the real Dagster definitions, and a
  generated company waiting for the write-back
- `boi_fake`: a recording fake of Sage 100's BOI COM objects
- `raw_soap`: hand-built SOAP requests for the agent
- `fault_proxy`: a fault-injecting HTTP proxy in front of the agent
- `dev_process`: a real `ml-connector dev` in a subprocess
- `tls`: a self-signed certificate for 127.0.0.1
- `waiting`: wait (bounded) for a condition, never a fixed sleep
"""
