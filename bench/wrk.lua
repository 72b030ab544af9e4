-- wrk script for `make bench`: every request carries a randomly chosen
-- user's signed better-auth cookie.
-- Environment: BENCH_DATA (file, per user: "<cookie>\t<item ids>\t<organization id>\t<its item ids>
--              \t<jwt>\t<api key>", ids comma-separated),
--              BENCH_SCENARIO (health | health_live | users_me | list_items | get_item | create_item | mixed
--                              | org_list_items | org_mixed | users_me_jwt | list_items_jwt
--                              | users_me_api_key).

local scenario = os.getenv("BENCH_SCENARIO") or "health"
local users = {}

local function load()
  for line in io.lines(os.getenv("BENCH_DATA")) do
    local cookie, ids, org, org_ids, jwt, api_key =
      line:match("^([^\t]+)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$")
    local items, org_items = {}, {}
    for id in ids:gmatch("[^,]+") do items[#items + 1] = id end
    for id in org_ids:gmatch("[^,]+") do org_items[#org_items + 1] = id end
    users[#users + 1] = { cookie = cookie, items = items, org = org, org_items = org_items, jwt = jwt, api_key = api_key }
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
  health_live = function() return wrk.format("GET", "/health/live") end,
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

-- The same requests in the user's organization (X-Organization-Id).
local function in_org(method, path, u, extra, payload)
  local headers = { ["Cookie"] = u.cookie, ["X-Organization-Id"] = u.org }
  for k, v in pairs(extra or {}) do headers[k] = v end
  return wrk.format(method, path, headers, payload)
end

builders.org_list_items = function() return in_org("GET", "/api/v1/items?limit=20", user()) end
builders.org_get_item = function()
  local u = user()
  return in_org("GET", "/api/v1/items/" .. u.org_items[math.random(#u.org_items)], u)
end
builders.org_create_item = function()
  return in_org("POST", "/api/v1/items", user(), { ["Content-Type"] = "application/json" }, body)
end

-- Other better-auth credentials: a JWT as bearer, an API key.
builders.users_me_jwt = function()
  return wrk.format("GET", "/api/v1/users/me", { ["Authorization"] = "Bearer " .. user().jwt })
end
builders.list_items_jwt = function()
  return wrk.format("GET", "/api/v1/items?limit=20", { ["Authorization"] = "Bearer " .. user().jwt })
end
builders.users_me_api_key = function()
  return wrk.format("GET", "/api/v1/users/me", { ["x-api-key"] = user().api_key })
end

-- 35 % list, 35 % get, 10 % me, 20 % create
local function mix(list, get_one, create)
  return function()
    local r = math.random(100)
    if r <= 35 then return list()
    elseif r <= 70 then return get_one()
    elseif r <= 80 then return builders.users_me()
    else return create() end
  end
end
builders.mixed = mix(builders.list_items, builders.get_item, builders.create_item)
builders.org_mixed = mix(builders.org_list_items, builders.org_get_item, builders.org_create_item)

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
