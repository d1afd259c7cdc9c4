-- wrk script of `kassa bench api` (kassa_dev/bench/api.py starts wrk with it).
--
-- Environment:
--   KASSA_BENCH_MODE      usage | balance | hold | healthz
--   KASSA_BENCH_TOKEN     the API key (Bearer)
--   KASSA_BENCH_ACCOUNTS  how many funded accounts: bench-user-0 .. bench-user-(N-1)
--   KASSA_BENCH_RUN       a tag unique to this run: Idempotency-Keys and event ids carry it
--   KASSA_BENCH_OUT       a file prefix; each thread appends "<status> <event id>" for every
--                         2xx usage answer to <prefix>.<thread>, which the bench checks against
--                         the ledger afterwards
--
-- Every request of every thread gets its own Idempotency-Key and event id
-- (<run>-<thread>-<counter>), so no request is a replay of another.

local mode = os.getenv("KASSA_BENCH_MODE") or "healthz"
local token = os.getenv("KASSA_BENCH_TOKEN") or ""
local accounts = tonumber(os.getenv("KASSA_BENCH_ACCOUNTS") or "1")
local run = os.getenv("KASSA_BENCH_RUN") or "run"
local out_prefix = os.getenv("KASSA_BENCH_OUT")

local threads = {}
local next_thread = 0

function setup(thread)
   thread:set("thread_id", next_thread)
   next_thread = next_thread + 1
   table.insert(threads, thread)
end

-- Globals, so that done() can read them from each thread with thread:get().
counter = 0
ok = 0
refused = 0
first_refusal = nil
local out = nil

function init(_args)
   counter = 0
   if mode == "usage" and out_prefix then
      out = io.open(out_prefix .. "." .. thread_id, "w")
      -- Line-buffered: wrk ends its threads without closing their files.
      out:setvbuf("line")
   end
end

local function account(n)
   return "bench-user-" .. (n % accounts)
end

function request()
   counter = counter + 1
   local id = run .. "-" .. thread_id .. "-" .. counter
   -- Spread the threads over the accounts: thread t starts at account t * 7.
   local who = account(counter + thread_id * 7)
   if mode == "healthz" then
      return wrk.format("GET", "/healthz")
   end
   local headers = { ["Authorization"] = "Bearer " .. token }
   if mode == "balance" then
      return wrk.format("GET", "/v1/accounts/" .. who .. "/balance", headers)
   end
   headers["Content-Type"] = "application/json"
   headers["Idempotency-Key"] = id
   if mode == "hold" then
      local body = '{"amount":{"amount":"0.01","asset":"USD"},"expires_in_seconds":3600}'
      return wrk.format("POST", "/v1/accounts/" .. who .. "/holds", headers, body)
   end
   local body = '{"events":[{"event_id":"' .. id .. '","amount":{"amount":"0.001","asset":"USD"},"description":"bench"}]}'
   return wrk.format("POST", "/v1/accounts/" .. who .. "/usage", headers, body)
end

function response(status, _headers, body)
   if status >= 200 and status < 300 then
      ok = ok + 1
      if out then
         local event, charged = string.match(body, '"events":%[{"event_id":"([^"]+)","status":"(%a+)"}')
         out:write(status, " ", event or "?", " ", charged or "?", "\n")
      end
   else
      refused = refused + 1
      if not first_refusal then
         first_refusal = status .. " " .. string.sub(body, 1, 300)
      end
   end
end

function done(summary, latency, _requests)
   local ok_total, refused_total = 0, 0
   for _, thread in ipairs(threads) do
      ok_total = ok_total + thread:get("ok")
      refused_total = refused_total + thread:get("refused")
      local sample = thread:get("first_refusal")
      if sample then
         io.write("KASSA_REFUSAL ", sample, "\n")
      end
   end
   local e = summary.errors
   io.write(string.format(
      "KASSA_BENCH {\"requests\":%d,\"duration_us\":%d,\"ok\":%d,\"refused\":%d," ..
      "\"connect\":%d,\"read\":%d,\"write\":%d,\"status\":%d,\"timeout\":%d," ..
      "\"p50_us\":%d,\"p90_us\":%d,\"p99_us\":%d,\"max_us\":%d}\n",
      summary.requests, summary.duration, ok_total, refused_total,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
