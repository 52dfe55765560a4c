-- check.lua: wrk checks every reply's status and body against what it
-- expects and prints one WRK line that bench/rpc/run.sh parses. The request
-- comes from the environment:
--   WRK_METHOD=GET  WRK_EXPECT="Hello, World!"   GET /, body must equal WRK_EXPECT
--   WRK_METHOD=POST WRK_SIZE=4096                  POST /echo with a WRK_SIZE-byte body, echoed
-- A reply that differs, or a status other than 200, counts as a mismatch.

local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

function init(args)
   mismatches = 0
   checked = 0
   local method = os.getenv("WRK_METHOD") or "GET"
   if method == "POST" then
      local size = tonumber(os.getenv("WRK_SIZE") or "4096")
      local parts = {}
      for i = 0, size - 1 do
         parts[#parts + 1] = string.char(97 + (i * 7) % 26)
      end
      expect = table.concat(parts)
      wrk.method = "POST"
      wrk.path = "/echo"
      wrk.body = expect
      wrk.headers["Content-Type"] = "application/octet-stream"
   else
      expect = os.getenv("WRK_EXPECT") or "Hello, World!"
      wrk.method = "GET"
      wrk.path = "/"
   end
   req = wrk.format()
end

function request()
   return req
end

function response(status, headers, body)
   checked = checked + 1
   if status ~= 200 or body ~= expect then
      mismatches = mismatches + 1
   end
end

function done(summary, latency, requests)
   local m, c = 0, 0
   for _, t in ipairs(threads) do
      m = m + (t:get("mismatches") or 0)
      c = c + (t:get("checked") or 0)
   end
   local e = summary.errors
   io.write(string.format(
      "WRK reqs=%d secs=%.3f rps=%.0f p50_us=%d p99_us=%d p999_us=%d checked=%d mismatches=%d " ..
      "connect_errors=%d read_errors=%d write_errors=%d status_errors=%d timeouts=%d\n",
      summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
      latency:percentile(50), latency:percentile(99), latency:percentile(99.9), c, m,
      e.connect, e.read, e.write, e.status, e.timeout))
end
