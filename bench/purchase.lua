-- wrk script: POST /v1/events, a purchase by a random member among the
-- BENCH_MEMBERS ids that start at BENCH_FIRST (default 1), of a random amount
-- from 1.00 to 500.00 (100 to 50000 minor units), with BENCH_KEY (a pos or
-- admin key) as a Bearer token. No "id": every request is a new event.
-- Each thread prebuilds a pool of requests, so wrk spends little of the CPU
-- it shares with the server on making them.

local counter = 1

function setup(thread)
   thread:set("id", counter)
   counter = counter + 1
end

local POOL = 4096
local requests = {}

function init(args)
   local key = os.getenv("BENCH_KEY")
   local members = tonumber(os.getenv("BENCH_MEMBERS") or "")
   local first = tonumber(os.getenv("BENCH_FIRST") or "1")
   if key == nil or key == "" or members == nil or members < 1 or first == nil then
      error("purchase.lua needs BENCH_KEY and BENCH_MEMBERS (and optionally BENCH_FIRST)")
   end
   -- id is set by setup(): each thread draws its own sequence.
   math.randomseed(os.time() * 1000 + (id or 0))
   local headers = {
      ["Authorization"] = "Bearer " .. key,
      ["Content-Type"] = "application/json",
   }
   for n = 1, POOL do
      local member = first + math.random(members) - 1
      local amount = math.random(100, 50000)
      local body = string.format('{"type":"purchase","member":"mem_%d","amount":%d}',
                                 member, amount)
      requests[n] = wrk.format("POST", "/v1/events", headers, body)
   end
end

function request()
   return requests[math.random(POOL)]
end
