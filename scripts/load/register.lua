-- POST /auth/register with a new address on every request: thread id + counter.
local counter = 0
local thread_id = 0
local next_id = 0

function setup(thread)
  next_id = next_id + 1
  thread:set("thread_id", next_id)
end

function init(args)
  thread_id = wrk.thread:get("thread_id") or 0
end

function request()
  counter = counter + 1
  local body = string.format(
    '{"email":"load-%d-%d@example.com","password":"correct horse battery staple"}',
    thread_id, counter)
  return wrk.format("POST", "/auth/register", {["Content-Type"] = "application/json"}, body)
end
