"""Copies an MSAL cache, with its access tokens valid for another hour: `fresh_cache.py IN OUT`."""
import json
import sys
import time

cache = json.load(open(sys.argv[1]))
now = int(time.time())
for token in cache["AccessToken"].values():
    token["expires_on"] = token["extended_expires_on"] = str(now + 3600)
    token["refresh_on"] = str(now + 1800)
json.dump(cache, open(sys.argv[2], "w"), indent=2)
