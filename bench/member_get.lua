-- wrk script: GET /v1/members/mem_<n> for a random n among the BENCH_MEMBERS
-- ids that start at BENCH_FIRST (default 1), with BENCH_KEY as a Bearer token.
-- Each thread prebuilds its requests, so wrk spends little of the CPU it
-- shares with the server on making them.

local counter = 1

function setup(thread)
   thread:set("id", counter)
   counter = counter + 1
end

local requests = {}
local nrequests = 0

function init(args)
   local key = os.getenv("BENCH_KEY")
   local members = tonumber(os.getenv("BENCH_MEMBERS") or "")
   local first = tonumber(os.getenv("BENCH_FIRST") or "1")
   if key == nil or key == "" or members == nil or members < 1 or first == nil then
      error("member_get.lua needs BENCH_KEY and BENCH_MEMBERS (and optionally BENCH_FIRST)")
   end
   -- id is set by setup(): each thread draws its own sequence.
   math.randomseed(os.time() * 1000 + (id or 0))
   local headers = { ["Authorization"] = "Bearer " .. key }
   for n = 1, members do
      requests[n] = wrk.format("GET", "/v1/members/mem_" .. (first + n - 1), headers)
   end
   nrequests = members
end

function request()
   return requests[math.random(nrequests)]
end
