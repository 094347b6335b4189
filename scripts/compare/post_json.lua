-- POST the JSON document in LOAD_JSON (better-auth's sign-in).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = os.getenv("LOAD_JSON")
