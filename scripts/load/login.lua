-- POST /auth/jwt/login with the benchmark user's credentials.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.body = "username=" .. os.getenv("LOAD_EMAIL") .. "&password=" .. os.getenv("LOAD_PASSWORD_FORM")
