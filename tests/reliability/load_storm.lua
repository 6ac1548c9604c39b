-- wrk script for tests/reliability/test_load.py: rotate GET over the paths given after `--`, optionally
-- wait `delay_ms` before each request on each connection (caps the rate), and count the 500 answers whose
-- problem document names each path. Usage: wrk ... -s load_storm.lua URL -- <delay_ms> <path>...
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  delay_ms = tonumber(args[1]) or 0
  paths, reqs, counts = {}, {}, {}
  for i = 2, #args do
    paths[#paths + 1] = args[i]
    reqs[#reqs + 1] = wrk.format("GET", args[i])
    counts[#counts + 1] = 0
  end
  other, n = 0, 0
  if delay_ms > 0 then
    function delay()
      return delay_ms
    end
  end
end

function request()
  n = n % #reqs + 1
  return reqs[n]
end

function response(status, headers, body)
  if status == 500 then
    for i, p in ipairs(paths) do
      if string.find(body, '"instance":"' .. p .. '"', 1, true) then
        counts[i] = counts[i] + 1
        return
      end
    end
  end
  other = other + 1
end

function done(summary, latency, requests)
  local totals, rest, names = {}, 0, nil
  for _, t in ipairs(threads) do
    names = t:get("paths")
    local c = t:get("counts")
    for i = 1, #names do
      totals[i] = (totals[i] or 0) + c[i]
    end
    rest = rest + t:get("other")
  end
  local parts = {}
  for i = 1, #names do
    parts[#parts + 1] = names[i] .. "=" .. totals[i]
  end
  parts[#parts + 1] = "other=" .. rest
  io.write("STORM " .. table.concat(parts, " ") .. "\n")
end
