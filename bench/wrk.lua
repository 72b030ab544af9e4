-- wrk script for `make bench`: every request carries a randomly chosen
-- user's signed better-auth cookie.
-- Environment: BENCH_DATA (file: "<cookie>\t<item id>,<item id>,…" per user),
--              BENCH_SCENARIO (health | users_me | list_items | get_item | create_item | mixed).

local scenario = os.getenv("BENCH_SCENARIO") or "health"
local users = {}

local function load()
  for line in io.lines(os.getenv("BENCH_DATA")) do
    local cookie, ids = line:match("^([^\t]+)\t(.*)$")
    local items = {}
    for id in ids:gmatch("[^,]+") do items[#items + 1] = id end
    users[#users + 1] = { cookie = cookie, items = items }
  end
end

local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("seed", counter)
end

function init(args)
  load()
  math.randomseed(os.time() * 1000 + (seed or 0))
end

local body = '{"name":"bench item","description":"created by make bench"}'

local function user() return users[math.random(#users)] end

local function get(path, u)
  return wrk.format("GET", path, { ["Cookie"] = u.cookie })
end

local builders = {
  health = function() return wrk.format("GET", "/health") end,
  users_me = function() return get("/api/v1/users/me", user()) end,
  list_items = function() return get("/api/v1/items?limit=20", user()) end,
  get_item = function()
    local u = user()
    return get("/api/v1/items/" .. u.items[math.random(#u.items)], u)
  end,
  create_item = function()
    local u = user()
    return wrk.format("POST", "/api/v1/items", { ["Cookie"] = u.cookie, ["Content-Type"] = "application/json" }, body)
  end,
}

-- 35 % list, 35 % get, 10 % me, 20 % create
builders.mixed = function()
  local r = math.random(100)
  if r <= 35 then return builders.list_items()
  elseif r <= 70 then return builders.get_item()
  elseif r <= 80 then return builders.users_me()
  else return builders.create_item() end
end

local build = builders[scenario] or error("unknown scenario " .. scenario)
function request() return build() end

function done(summary, latency, requests)
  local non2xx = 0
  -- wrk counts non-2xx/3xx in summary.errors.status
  non2xx = summary.errors.status
  io.write(string.format(
    "BENCH_RESULT {\"requests\":%d,\"duration_us\":%d,\"p50_us\":%d,\"p99_us\":%d,\"non2xx\":%d,\"socket_errors\":%d}\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), non2xx,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
