-- POST /auth/jwt/refresh along one rotation chain per thread. Run with as many threads as
-- connections (-t N -c N), so each connection waits for its answer before using the new token.
local tokens = {}
local next_index = 0

function setup(thread)
  if #tokens == 0 then
    for line in io.lines(os.getenv("LOAD_REFRESH_TOKENS")) do
      tokens[#tokens + 1] = line
    end
  end
  next_index = next_index + 1
  thread:set("token", tokens[next_index])
end

local token

function init(args)
  token = wrk.thread:get("token")
end

function request()
  return wrk.format("POST", "/auth/jwt/refresh", {["Content-Type"] = "application/json"},
    '{"refresh_token":"' .. token .. '"}')
end

function response(status, headers, body)
  local next_token = string.match(body, '"refresh_token":"([^"]+)"')
  if next_token then
    token = next_token
  end
end
