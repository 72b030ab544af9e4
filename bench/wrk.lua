-- wrk script for `make bench`: every request carries a randomly chosen
-- user's credential (signed better-auth cookie, JWT or API key).
-- Environment: BENCH_DATA (file, per user: "<cookie>\t<item ids>\t<organization id>\t<its item ids>
--              \t<jwt>\t<api key>", ids comma-separated),
--              BENCH_SCENARIO (health | health_live | users_me | list_items | list_items_sorted
--                              | list_items_search | get_item | create_item | mixed
--                              | org_list_items | org_mixed | users_me_jwt | list_items_jwt
--                              | users_me_api_key).
--
-- wrk runs on the same two cores as the server, so whatever it does per
-- request is taken from the server. Every request a scenario can send is
-- therefore formatted once, in init(), and a request costs wrk a random
-- number and a table lookup, the same for every scenario: what differs
-- between two scenarios' numbers is the server's work, not the Lua's.

local scenario = os.getenv("BENCH_SCENARIO") or "health"
local body = '{"name":"bench item","description":"created by make bench"}'

local function split(list)
  local out = {}
  for id in list:gmatch("[^,]+") do out[#out + 1] = id end
  return out
end

-- What each kind of request looks like for user `u`.
local function cookie(u, extra)
  local headers = { ["Cookie"] = u.cookie }
  for k, v in pairs(extra or {}) do headers[k] = v end
  return headers
end
local function in_org(u, content_type)
  return cookie(u, { ["X-Organization-Id"] = u.org, ["Content-Type"] = content_type })
end
local function json() return { ["Content-Type"] = "application/json" } end
local function item_gets(ids, headers)
  local out = {}
  for _, id in ipairs(ids) do out[#out + 1] = wrk.format("GET", "/api/v1/items/" .. id, headers) end
  return out
end

local kinds = {
  health = function() return { wrk.format("GET", "/health") } end,
  health_live = function() return { wrk.format("GET", "/health/live") } end,
  me = function(u) return { wrk.format("GET", "/api/v1/users/me", cookie(u)) } end,
  list = function(u) return { wrk.format("GET", "/api/v1/items?limit=20", cookie(u)) } end,
  list_sorted = function(u)
    return { wrk.format("GET", "/api/v1/items?limit=20&sort=name&is_active=true", cookie(u)) }
  end,
  -- q of 3 characters: "m 1" (items 1, 10-19) or "m 2" (items 2, 20)
  list_search = function(u)
    return { wrk.format("GET", "/api/v1/items?limit=20&q=m%201", cookie(u)),
             wrk.format("GET", "/api/v1/items?limit=20&q=m%202", cookie(u)) }
  end,
  get = function(u) return item_gets(u.items, cookie(u)) end,
  create = function(u) return { wrk.format("POST", "/api/v1/items", cookie(u, json()), body) } end,
  org_list = function(u) return { wrk.format("GET", "/api/v1/items?limit=20", in_org(u)) } end,
  org_get = function(u) return item_gets(u.org_items, in_org(u)) end,
  org_create = function(u) return { wrk.format("POST", "/api/v1/items", in_org(u, "application/json"), body) } end,
  me_jwt = function(u)
    return { wrk.format("GET", "/api/v1/users/me", { ["Authorization"] = "Bearer " .. u.jwt }) }
  end,
  list_jwt = function(u)
    return { wrk.format("GET", "/api/v1/items?limit=20", { ["Authorization"] = "Bearer " .. u.jwt }) }
  end,
  me_api_key = function(u) return { wrk.format("GET", "/api/v1/users/me", { ["x-api-key"] = u.api_key }) } end,
}

-- Each scenario: the kinds it sends, with their shares (cumulative percent).
local scenarios = {
  health = { { 100, "health" } },
  health_live = { { 100, "health_live" } },
  users_me = { { 100, "me" } },
  list_items = { { 100, "list" } },
  list_items_sorted = { { 100, "list_sorted" } },
  list_items_search = { { 100, "list_search" } },
  get_item = { { 100, "get" } },
  create_item = { { 100, "create" } },
  org_list_items = { { 100, "org_list" } },
  users_me_jwt = { { 100, "me_jwt" } },
  list_items_jwt = { { 100, "list_jwt" } },
  users_me_api_key = { { 100, "me_api_key" } },
  -- 35 % list, 35 % get, 10 % me, 20 % create
  mixed = { { 35, "list" }, { 70, "get" }, { 80, "me" }, { 100, "create" } },
  org_mixed = { { 35, "org_list" }, { 70, "org_get" }, { 80, "me" }, { 100, "org_create" } },
}
local mix = scenarios[scenario] or error("unknown scenario " .. scenario)

-- users[i][kind] = the requests of that kind for user i, formatted.
local users = {}

local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("seed", counter)
end

function init(args)
  for line in io.lines(os.getenv("BENCH_DATA")) do
    local cookie_value, ids, org, org_ids, jwt, api_key =
      line:match("^([^\t]+)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$")
    local u = { cookie = cookie_value, items = split(ids), org = org, org_items = split(org_ids),
                jwt = jwt, api_key = api_key }
    local formatted = {}
    for _, share in ipairs(mix) do formatted[share[2]] = kinds[share[2]](u) end
    users[#users + 1] = formatted
  end
  math.randomseed(os.time() * 1000 + (seed or 0))
end

local function pick(list) return list[math.random(#list)] end

function request()
  local u = pick(users)
  if #mix == 1 then return pick(u[mix[1][2]]) end
  local r = math.random(100)
  for _, share in ipairs(mix) do
    if r <= share[1] then return pick(u[share[2]]) end
  end
end

function done(summary, latency, requests)
  -- wrk counts non-2xx/3xx in summary.errors.status
  io.write(string.format(
    "BENCH_RESULT {\"requests\":%d,\"duration_us\":%d,\"p50_us\":%d,\"p99_us\":%d,\"non2xx\":%d,\"socket_errors\":%d}\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
