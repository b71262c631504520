-- tollgate store/redis: apply one batch of algorithm ops, all or nothing.
--
-- A port of package algorithms (Go), held to it by a differential test.
-- KEYS[i] is the key of op i. ARGV[1] is now in µs, or "" for Redis TIME;
-- ARGV[2] the shortest TTL in ms (0: none). ARGV[5i-2 .. 5i+2] are op i's
-- kind*4 + flags, limit, period, burst (token bucket, GCRA) or offset
-- (windows), and cost, where offset is already reduced to [0, period),
-- cost clamped to [-2^53, 2^53], and flags = 1 (Force) + 2 (Shadow).
-- State per key: a string "s0 s1 s2" (the three int64s of algorithms.State).
-- Reply: "admitted" then, per op, "allowed reason remaining retry reset",
-- separated by single spaces.
--
-- Lua numbers are doubles, exact for integers below 2^53. Each op runs a
-- fast path in plain doubles that checks every sum and product it forms
-- stays below 2^53 (a rounded sum or product of nonnegative integers is
-- below 2^53 only if the exact one is, so the check is exact); when one
-- does not, the op starts over in exactOp (see loadExact), which computes
-- with base-2^24 limbs. Quotients of integers below 2^53 are exact in
-- doubles: floor(a/d) needs no limbs.
--
-- Every call pays for each closure, table and upvalue it creates (and for
-- collecting them) and for each redis.call, more than for the arithmetic of
-- an op: the fast paths are inline, a batch of one key keeps its state in
-- locals, and the exact code is defined only when an op needs it.

local TWO53 = 9007199254740992
local MAXLEVEL = TWO53
local MAXTTLMS = 9007199254740 -- floor(2^53 / 1000): about 285 years
local floor, max, min, tonumber, format = math.floor, math.max, math.min, tonumber, string.format

-- loadExact returns exactOp(kind, L, P, B, off, now, cost, force, s0, s1,
-- s2), which runs sliding window, token bucket or GCRA exactly at any size
-- with base-2^24 limbs, and the parse and format of int64s that may be
-- limbs. It is the port's reference: a fast path returns what it would.
-- It captures no upvalue, so that defining it costs a call little.
local function loadExact()
  local TWO53 = 9007199254740992
  local MAXLEVEL = TWO53
  local BASE = 16777216 -- 2^24
  local floor, max, min = math.floor, math.max, math.min
  local MAXI64, limbs, norm, add, sub, mul, cmp, divmod, divmodSat, divCeil, fmtbig, parsebig
  MAXI64 = {16777215, 16777215, 32767} -- 2^63-1
  limbs = function(v)
    if type(v) == 'table' then return v end
    local t, i = {}, 0
    repeat
      i = i + 1
      local l = v % BASE
      t[i] = l
      v = (v - l) / BASE
    until v == 0
    return t
  end

  norm = function(t)
    local n = #t
    while n > 1 and t[n] == 0 do t[n] = nil; n = n - 1 end
    if n <= 2 or (n == 3 and (t[3] < 32 or (t[3] == 32 and t[2] == 0 and t[1] == 0))) then
      local v = 0
      for i = n, 1, -1 do v = v * BASE + t[i] end
      return v
    end
    return t
  end

  add = function(a, b)
    if type(a) == 'number' and type(b) == 'number' then
      local s = a + b
      if s < TWO53 then return s end
    end
    local x, y = limbs(a), limbs(b)
    local r, carry = {}, 0
    local n = #x
    if #y > n then n = #y end
    for i = 1, n do
      local v = (x[i] or 0) + (y[i] or 0) + carry
      if v >= BASE then r[i] = v - BASE; carry = 1 else r[i] = v; carry = 0 end
    end
    if carry > 0 then r[n + 1] = carry end
    return norm(r)
  end

  -- sub returns a-b; callers ensure a >= b.
  sub = function(a, b)
    if type(a) == 'number' and type(b) == 'number' then return a - b end
    local x, y = limbs(a), limbs(b)
    local r, borrow = {}, 0
    for i = 1, #x do
      local v = x[i] - (y[i] or 0) - borrow
      if v < 0 then r[i] = v + BASE; borrow = 1 else r[i] = v; borrow = 0 end
    end
    return norm(r)
  end

  mul = function(a, b)
    if type(a) == 'number' and type(b) == 'number' then
      local p = a * b
      if p < TWO53 then return p end
    end
    local x, y = limbs(a), limbs(b)
    local nx, ny = #x, #y
    local r = {}
    for i = 1, nx + ny + 1 do r[i] = 0 end
    for i = 1, nx do
      local carry, xi = 0, x[i]
      for j = 1, ny do
        local v = r[i + j - 1] + xi * y[j] + carry
        local l = v % BASE
        r[i + j - 1] = l
        carry = (v - l) / BASE
      end
      local k = i + ny
      while carry > 0 do
        local v = r[k] + carry
        local l = v % BASE
        r[k] = l
        carry = (v - l) / BASE
        k = k + 1
      end
    end
    return norm(r)
  end

  cmp = function(a, b)
    local ta, tb = type(a), type(b)
    if ta == 'number' and tb == 'number' then
      if a < b then return -1 elseif a > b then return 1 end
      return 0
    end
    -- A table is above 2^53, a number at most 2^53.
    if ta == 'number' then return -1 end
    if tb == 'number' then return 1 end
    local x, y = limbs(a), limbs(b)
    if #x ~= #y then
      if #x < #y then return -1 end
      return 1
    end
    for i = #x, 1, -1 do
      if x[i] ~= y[i] then
        if x[i] < y[i] then return -1 end
        return 1
      end
    end
    return 0
  end

  -- divmod divides a >= 0 by 1 <= d <= 2^53: the exact quotient (a number or
  -- limbs) and remainder. Above 2^53 it subtracts under-estimated multiples of
  -- d (each step gains about 40 bits), then finishes in exact doubles: for
  -- integers below 2^53, floor(a/d) computed in doubles is exact.
  divmod = function(a, d)
    if type(a) == 'number' then
      local q = floor(a / d)
      return q, a - q * d
    end
    local q = 0
    while type(a) == 'table' do
      local v = 0
      for i = #a, 1, -1 do v = v * BASE + a[i] end
      local e = floor(v / d * (1 - 2 ^ -40))
      if e < 1 then e = 1 end
      a = sub(a, mul(e, d))
      q = add(q, e)
    end
    local q2 = floor(a / d)
    return add(q, q2), a - q2 * d
  end

  -- divmodSat is divmod with the quotient saturated at 2^63-1, as Go's u128.divmod.
  divmodSat = function(a, d)
    local q, r = divmod(a, d)
    if type(q) == 'table' and cmp(q, MAXI64) > 0 then q = MAXI64 end
    return q, r
  end

  -- divCeil returns ceil(a/d), saturated at 2^63-1.
  divCeil = function(a, d)
    local q, r = divmodSat(a, d)
    if r ~= 0 and (type(q) == 'number' or cmp(q, MAXI64) < 0) then q = add(q, 1) end
    return q
  end

  fmtbig = function(v)
    if type(v) == 'number' then return string.format('%d', v) end
    local x, parts = {}, {}
    for i = 1, #v do x[i] = v[i] end
    local n = #x
    while n > 0 do
      local r = 0
      for i = n, 1, -1 do
        local c = r * BASE + x[i]
        local q = floor(c / 10000000)
        r = c - q * 10000000
        x[i] = q
      end
      while n > 0 and x[n] == 0 do n = n - 1 end
      parts[#parts + 1] = r
    end
    local s = string.format('%d', parts[#parts])
    for i = #parts - 1, 1, -1 do s = s .. string.format('%07d', parts[i]) end
    return s
  end

  -- parse reads a stored int64: a number when at most 2^53 in magnitude,
  -- else limbs (only GCRA arrival times get there; they are never negative).
  parsebig = function(s)
    local v = tonumber(s)
    if v == nil or v ~= floor(v) then return nil end
    if v >= -TWO53 and v <= TWO53 then return v end
    if v < 0 or #s > 19 or not string.find(s, '^%d+$') then return nil end
    local n = #s
    local big = add(mul(tonumber(string.sub(s, 1, n - 9)), 1000000000), tonumber(string.sub(s, n - 8)))
    if cmp(big, MAXI64) > 0 then return nil end
    return big
  end


  local function fmt(v)
    if type(v) == 'number' then return string.format('%d', v) end
    return fmtbig(v)
  end

  -- parse reads a stored int64: a number when at most 2^53 in magnitude,
  -- else limbs (only GCRA arrival times get there; they are never negative).
  local function parse(s)
    local v = tonumber(s)
    if v ~= nil and v >= -TWO53 and v <= TWO53 then
      if v ~= floor(v) then return nil end
      return v
    end
    return parsebig(s)
  end

  local slidingWindow, tokenBucket, gcra
  do
    local function slidingReset(ws, P, now, curr, prev)
      if curr > 0 then return ws + 2 * P - now end
      if prev > 0 then return ws + P - now end
      return 0
    end

    slidingWindow = function(L, P, off, now, cost, force, s0, s1, s2)
      local ws = now - (now - off) % P
      -- A clock that went back behind the key's window stays at its start.
      if (s1 > 0 or s2 > 0) and s0 > ws then ws = s0 end
      local curr, prev = 0, 0
      if s0 == ws then curr, prev = s1, s2 elseif s0 == ws - P then prev = s1 end
      local e = max(0, now - ws)
      -- d = L - est, where est = ceil(prev*(P-e)/P) + curr may pass 2^53:
      -- d keeps the sign and, when it matters, the exact value.
      local d = (L - curr) - divCeil(mul(prev, P - e), P)
      local want = cost
      if want < 1 then want = 1 end
      if cost < 0 then
        curr = curr + cost
        if curr < 0 then
          prev = min(max(prev + curr, 0), MAXLEVEL)
          curr = 0
        end
      elseif force and cost > 0 then
        curr = min(max(curr + cost, 0), MAXLEVEL)
      elseif want > L then
        return nil, nil, nil, 0, 2, max(0, d), 0, slidingReset(ws, P, now, curr, prev)
      elseif d < want then
        local retry
        local room = (L - curr) - want
        if room >= 0 then
          local q = divmod(mul(room, P), prev)
          retry = P - q - e
        else
          local q = divmod(mul(L - want, P), curr)
          retry = P - e + P - q
        end
        retry = retry + e - (now - ws) -- until the clock is back in the window
        return nil, nil, nil, 0, 1, max(0, d), retry, slidingReset(ws, P, now, curr, prev)
      elseif cost > 0 then
        curr = curr + cost
      end
      if curr == 0 and prev == 0 then return 0, 0, 0, 1, 0, L, 0, 0 end
      d = (L - curr) - divCeil(mul(prev, P - e), P)
      return ws, curr, prev, 1, 0, max(0, d), 0, slidingReset(ws, P, now, curr, prev)
    end
  end
  do
    -- drainTime is how long until units more units of a bucket have drained.
    -- A clock that went back behind the last refill (behind µs) drains
    -- nothing until it is back there.
    local function drainTime(units, P, L, frac, behind)
      if units <= 0 then return 0 end
      local d = divCeil(sub(mul(units, P), frac), L)
      if behind > 0 then
        local top = sub(MAXI64, behind)
        if cmp(d, top) > 0 then d = top end
        d = add(d, behind)
      end
      return d
    end

    tokenBucket = function(L, P, B, now, cost, force, level, last, frac)
      if level <= 0 then
        level, frac, last = 0, 0, now
      elseif now > last then
        local q, r = divmod(add(mul(now - last, L), frac), P)
        if cmp(q, level) >= 0 then
          level, frac = 0, 0
        else
          level, frac = level - q, r
        end
        last = now
      end
      local behind = max(0, last - now)
      local want = cost
      if want < 1 then want = 1 end
      if cost < 0 then
        level = min(max(level + cost, 0), MAXLEVEL)
      elseif force and cost > 0 then
        if level > MAXLEVEL - cost then
          -- Units used saturate at exactly MaxLimit, as GCRA's do.
          level, frac = MAXLEVEL, 0
        else
          level = level + cost
        end
      elseif want > B then
        return nil, nil, nil, 0, 2, max(0, B - level), 0, drainTime(level, P, L, frac, behind)
      elseif level > B - want then
        return nil, nil, nil, 0, 1, max(0, B - level), drainTime(level - (B - want), P, L, frac, behind), drainTime(level, P, L, frac, behind)
      elseif cost > 0 then
        level = level + cost
      end
      if level == 0 then return 0, 0, 0, 1, 0, B, 0, 0 end
      return level, last, frac, 1, 0, max(0, B - level), 0, drainTime(level, P, L, frac, behind)
    end
  end
  do
    -- gcraRemaining is floor((B*P - x)/P) when x < B*P, else 0; that is
    -- B - ceil(x/P), which needs no product.
    local function gcraRemaining(x, B, P)
      local c = divCeil(x, P)
      if type(c) == 'table' or c >= B then return 0 end
      return B - c
    end

    local TWO62 = 4611686018427387904
    local LOW62 = {16777215, 16777215, 16383} -- 2^62-1

    -- split62 returns the low 62 bits and the high bits of a >= 2^62.
    local function split62(a)
      local t = limbs(a)
      local l3 = t[3] or 0
      local top = l3 % 16384
      local hi = (l3 - top) / 16384 + (t[4] or 0) * 1024 + (t[5] or 0) * 17179869184 + (t[6] or 0) * 288230376151711744
      return norm({t[1], t[2] or 0, top}), hi
    end

    -- gcra: the arrival time is tat (below 2^62 µs, hi 0) or hi*2^62 + tat.
    gcra = function(L, P, B, now, cost, force, tat, tatFrac, hi)
      -- x: how far the arrival time lies ahead of now, in 1/L µs.
      local x = 0
      if hi ~= 0 then
        local at = add(mul(hi, TWO62), tat)
        if cmp(at, now) > 0 then x = add(mul(sub(at, now), L), tatFrac) end
      else
        local c = cmp(tat, now)
        if c > 0 or (c == 0 and tatFrac > 0) then
          x = add(mul(sub(tat, now), L), tatFrac)
        end
      end
      local want = cost
      if want < 1 then want = 1 end
      if cost < 0 then
        local refund = mul(-cost, P)
        if cmp(refund, x) >= 0 then x = 0 else x = sub(x, refund) end
      elseif force and cost > 0 then
        x = add(x, mul(cost, P))
        local ceiling = mul(MAXLEVEL, P)
        if cmp(x, ceiling) > 0 then x = ceiling end
      elseif want > B then
        return nil, nil, nil, 0, 2, gcraRemaining(x, B, P), 0, divCeil(x, L)
      elseif cmp(x, mul(B - want, P)) > 0 then -- x + want*P > B*P
        local retry = divCeil(sub(x, mul(B - want, P)), L)
        return nil, nil, nil, 0, 1, gcraRemaining(x, B, P), retry, divCeil(x, L)
      elseif cost > 0 then
        x = add(x, mul(cost, P))
      end
      if x == 0 then return 0, 0, 0, 1, 0, B, 0, 0 end
      local q, r = divmod(x, L)
      local at = add(q, now)
      local rem, reset = gcraRemaining(x, B, P), divCeil(x, L)
      if cmp(at, LOW62) <= 0 then return at, r, 0, 1, 0, rem, 0, reset end
      -- From 2^62 µs on, the high bits go to s2, as in package algorithms.
      local lo, h = split62(at)
      return lo, r, h, 1, 0, rem, 0, reset
    end
  end

  local function exactOp(kind, L, P, B, off, now, cost, force, a, b, c)
    if kind == 2 then return slidingWindow(L, P, off, now, cost, force, a, b, c) end
    if kind == 3 then return tokenBucket(L, P, B, now, cost, force, a, b, c) end
    return gcra(L, P, B, now, cost, force, a, b, c)
  end
  return exactOp, parse, fmt
end

local now = tonumber(ARGV[1])
if now == nil then
  if redis.replicate_commands then redis.replicate_commands() end
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end

local minTTL = tonumber(ARGV[2]) or 0
local nkeys = #KEYS
local exactOp, exactParse, exactFmt
-- A batch of several keys keeps per key {s0, s1, s2, dirty, resetAfter} in
-- states, and its reply values in vals (admitted, then allowed, reason,
-- remaining, retry, reset per op); a batch of one key, in locals.
local states, order, vals, raws
local one0, one1, one2, oneDirty, oneReset = 0, 0, 0, false, 0
local ok, reason, rem, retry, reset
local big = false -- a reply value is limbs (an exactOp result past 2^53)
local admitted = true
if nkeys > 1 then
  states, order, vals = {}, {}, {0}
  -- One MGET reads every key of a batch.
  raws = redis.call('MGET', unpack(KEYS))
end
for i = 1, nkeys do
  local key = KEYS[i]
  local a = i * 5 - 2
  local kf, L, P, X, cost = tonumber(ARGV[a]), tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4])
  if kf == nil or L == nil or P == nil or X == nil or cost == nil then
    return redis.error_reply('ERR tollgate: malformed op ' .. i)
  end
  local flags = kf % 4
  local kind = (kf - flags) / 4
  local force = flags % 2 == 1
  local st
  if states then st = states[key] end
  local k0, k1, k2 = 0, 0, 0
  if st then
    k0, k1, k2 = st[1], st[2], st[3]
  else
    local raw
    if raws then raw = raws[i] else raw = redis.call('GET', key) end
    if raw then
      local sa, sb, sc = string.match(raw, '^(%-?%d+) (%-?%d+) (%-?%d+)$')
      if sa == nil then return redis.error_reply('ERR tollgate: malformed state in ' .. key) end
      k0, k1, k2 = tonumber(sa), tonumber(sb), tonumber(sc)
      if k0 < -TWO53 or k0 > TWO53 or k1 < -TWO53 or k1 > TWO53 or k2 < -TWO53 or k2 > TWO53 then
        if exactOp == nil then exactOp, exactParse, exactFmt = loadExact() end
        k0, k1, k2 = exactParse(sa), exactParse(sb), exactParse(sc)
        if k0 == nil or k1 == nil or k2 == nil or type(k1) == 'table' or type(k2) == 'table' or (type(k0) == 'table' and kind ~= 4) then
          return redis.error_reply('ERR tollgate: malformed state in ' .. key)
        end
      end
    end
    if states then
      st = {k0, k1, k2, false, 0}
      states[key] = st
      order[#order + 1] = key
    end
  end
  if (kind == 3 or kind == 4) and X == 0 then X = L end
  -- The op's new state (s0 nil: unchanged) and result; slow: start over
  -- in exactOp.
  local s0, s1, s2
  local slow = false
  ok, reason, rem, retry, reset = 1, 0, 0, 0, 0
  local want = cost
  if want < 1 then want = 1 end
  if L == 0 then
    if cost < 0 or (force and cost > 0) then
      s0, s1, s2 = 0, 0, 0
    else
      ok, reason = 0, 2
    end
  elseif type(k0) == 'table' then
    slow = true
  else repeat
    if kind == 1 then
      -- Fixed window: no products.
      local ws = now - (now - X) % P
      -- A clock that went back behind the key's window stays in it.
      if k1 > 0 and k0 > ws then ws = k0 end
      local count = k1
      if k0 ~= ws then count = 0 end
      local r = ws + P - now
      if cost < 0 or (force and cost > 0) then
        count = min(max(count + cost, 0), MAXLEVEL)
      elseif want > L then
        if count == 0 then r = 0 end
        ok, reason, rem, reset = 0, 2, max(0, L - count), r
        break
      elseif count > L - want then
        ok, reason, rem, retry, reset = 0, 1, max(0, L - count), r, r
        break
      elseif cost > 0 then
        count = count + cost
      end
      if count == 0 then
        s0, s1, s2, rem = 0, 0, 0, L
      else
        s0, s1, s2, rem, reset = ws, count, 0, max(0, L - count), r
      end

    elseif kind == 2 then
      -- Sliding window.
      local ws = now - (now - X) % P
      -- A clock that went back behind the key's window stays at its start.
      if (k1 > 0 or k2 > 0) and k0 > ws then ws = k0 end
      local curr, prev = 0, 0
      if k0 == ws then curr, prev = k1, k2 elseif k0 == ws - P then prev = k1 end
      local e = max(0, now - ws)
      -- d = L - est, where est = ceil(prev*(P-e)/P) + curr.
      local w = prev * (P - e)
      if w >= TWO53 then slow = true; break end
      local q = floor(w / P)
      if q * P < w then q = q + 1 end
      local d = (L - curr) - q
      if cost < 0 then
        curr = curr + cost
        if curr < 0 then
          prev = min(max(prev + curr, 0), MAXLEVEL)
          curr = 0
        end
      elseif force and cost > 0 then
        curr = min(max(curr + cost, 0), MAXLEVEL)
      elseif want > L or d < want then
        ok, rem = 0, max(0, d)
        if want > L then
          reason = 2
        else
          reason = 1
          local room = (L - curr) - want
          if room >= 0 then
            local m = room * P
            if m >= TWO53 then slow = true; break end
            retry = P - floor(m / prev) - e
          else
            local m = (L - want) * P
            if m >= TWO53 then slow = true; break end
            retry = P - e + P - floor(m / curr)
          end
          retry = retry + e - (now - ws) -- until the clock is back in the window
        end
        if curr > 0 then reset = ws + 2 * P - now elseif prev > 0 then reset = ws + P - now end
        break
      elseif cost > 0 then
        curr = curr + cost
      end
      if curr == 0 and prev == 0 then
        s0, s1, s2, rem = 0, 0, 0, L
      else
        w = prev * (P - e)
        if w >= TWO53 then slow = true; break end
        q = floor(w / P)
        if q * P < w then q = q + 1 end
        s0, s1, s2, rem = ws, curr, prev, max(0, (L - curr) - q)
        if curr > 0 then reset = ws + 2 * P - now else reset = ws + P - now end
      end

    elseif kind == 3 then
      -- Token bucket; B is X.
      local level, last, frac = k0, k1, k2
      if level <= 0 then
        level, frac, last = 0, 0, now
      elseif now > last then
        local t = (now - last) * L + frac
        if t < TWO53 then
          local q = floor(t / P)
          if q >= level then
            level, frac = 0, 0
          else
            level, frac = level - q, t - q * P
          end
        elseif level * P < TWO53 then
          -- (now-last)*L + frac >= 2^53 > level*P: the bucket drained.
          level, frac = 0, 0
        else
          slow = true; break
        end
        last = now
      end
      -- The time until units drain: ceil((units*P - frac)/L), plus the
      -- time until a clock that went back is back at last.
      local behind = max(0, last - now)
      local units = 0
      if cost < 0 then
        level = min(max(level + cost, 0), MAXLEVEL)
      elseif force and cost > 0 then
        if level > MAXLEVEL - cost then
          -- Units used saturate at exactly MaxLimit, as GCRA's do.
          level, frac = MAXLEVEL, 0
        else
          level = level + cost
        end
      elseif want > X then
        ok, reason, rem = 0, 2, max(0, X - level)
      elseif level > X - want then
        ok, reason, rem = 0, 1, max(0, X - level)
        units = level - (X - want)
      elseif cost > 0 then
        level = level + cost
      end
      if units > 0 then
        local m = units * P
        if m >= TWO53 then slow = true; break end
        m = m - frac
        local d = floor(m / L)
        if d * L < m then d = d + 1 end
        retry = d + behind
        if retry >= TWO53 then slow = true; break end
      end
      if ok == 1 and level == 0 then
        s0, s1, s2, rem = 0, 0, 0, X
      else
        if level > 0 then
          local m = level * P
          if m >= TWO53 then slow = true; break end
          m = m - frac
          local d = floor(m / L)
          if d * L < m then d = d + 1 end
          reset = d + behind
          if reset >= TWO53 then slow = true; break end
        end
        if ok == 1 then s0, s1, s2, rem = level, last, frac, max(0, X - level) end
      end

    elseif kind == 4 then
      -- GCRA; B is X. The arrival time is k0 + k1/L µs (k2, its bits from
      -- 2^62 µs on, is 0 here); x is how far it lies ahead of now, in
      -- 1/L µs. Below 2^53, x > k*P is ceil(x/P) > k: no product.
      if k2 ~= 0 then slow = true; break end
      local x = 0
      if k0 > now or (k0 == now and k1 > 0) then
        x = (k0 - now) * L + k1
        if x >= TWO53 then slow = true; break end
      end
      if cost < 0 then
        -- A refund of 2^53 or more exceeds any x here.
        local refund = -cost * P
        if refund >= x then x = 0 else x = x - refund end
      elseif force and cost > 0 then
        -- The ceiling, 2^53 * P, is above any x here.
        x = x + cost * P
        if x >= TWO53 then slow = true; break end
      else
        local c = floor(x / P) -- ceil(x/P)
        if c * P < x then c = c + 1 end
        if want > X or c > X - want then
          ok, rem = 0, 0
          if c < X then rem = X - c end
          reset = floor(x / L)
          if reset * L < x then reset = reset + 1 end
          if want > X then
            reason = 2
          else
            -- (B-want)*P < x < 2^53: exact.
            reason = 1
            local over = x - (X - want) * P
            retry = floor(over / L)
            if retry * L < over then retry = retry + 1 end
          end
          break
        end
        if cost > 0 then
          x = x + cost * P
          if x >= TWO53 then slow = true; break end
        end
      end
      if x == 0 then
        s0, s1, s2, rem = 0, 0, 0, X
      else
        local q = floor(x / L)
        local at = q + now
        if at >= TWO53 then slow = true; break end
        local c = floor(x / P)
        if c * P < x then c = c + 1 end
        if c < X then rem = X - c end
        reset = q
        if q * L < x then reset = q + 1 end
        s0, s1, s2 = at, x - q * L, 0
      end

    else
      -- Concurrency: no products.
      local inflight, last = k0, k1
      if inflight > 0 and now - last >= P then inflight = 0 end
      if cost < 0 or (force and cost > 0) then
        inflight = min(max(inflight + cost, 0), MAXLEVEL)
        last = now
      elseif want > L or inflight > L - want then
        ok, rem = 0, max(0, L - inflight)
        if want > L then reason = 2 else reason = 1 end
        if inflight > 0 or reason == 1 then
          reset = last + P - now
          if reset < 1 then reset = 1 end
        end
        break
      elseif cost > 0 then
        inflight = inflight + cost
        last = now
      end
      if inflight == 0 then
        s0, s1, s2, rem = 0, 0, 0, L
      else
        reset = last + P - now
        if reset < 1 then reset = 1 end
        s0, s1, s2, rem = inflight, last, 0, max(0, L - inflight)
      end
    end
  until true end
  if slow then
    if exactOp == nil then exactOp, exactParse, exactFmt = loadExact() end
    s0, s1, s2, ok, reason, rem, retry, reset = exactOp(kind, L, P, X, X, now, cost, force, k0, k1, k2)
    if type(retry) == 'table' then retry = exactFmt(retry); big = true end
    if type(reset) == 'table' then reset = exactFmt(reset); big = true end
  end
  if ok == 0 and flags < 2 then admitted = false end
  local dirty = s0 ~= nil and cost ~= 0
  if s0 == nil then s0, s1, s2 = k0, k1, k2 end
  if st then
    st[1], st[2], st[3], st[5] = s0, s1, s2, reset
    if dirty then st[4] = true end
    local n = #vals
    vals[n + 1], vals[n + 2], vals[n + 3], vals[n + 4], vals[n + 5] = ok, reason, rem, retry, reset
  else
    one0, one1, one2, oneDirty, oneReset = s0, s1, s2, dirty, reset
  end
end

if admitted then
  for j = 1, (order and #order or 1) do
    local key, dirty, s0, s1, s2, ra = KEYS[1], oneDirty, one0, one1, one2, oneReset
    if order then
      key = order[j]
      local st = states[key]
      dirty, s0, s1, s2, ra = st[4], st[1], st[2], st[3], st[5]
    end
    if dirty then
      if s0 == 0 and s1 == 0 and s2 == 0 then
        redis.call('DEL', key)
      else
        -- TTL: the state's reset, rounded up to ms; the exact reset (a
        -- string) of a GCRA past 2^53 µs gets the longest.
        local ms = MAXTTLMS
        if type(ra) == 'number' then
          local q = floor(ra / 1000)
          if q * 1000 < ra then q = q + 1 end
          if q < minTTL then q = minTTL end
          if q < 1 then q = 1 end
          if q < ms then ms = q end
        end
        local v
        if type(s0) == 'number' then
          v = format('%d %d %d', s0, s1, s2)
        else
          v = exactFmt(s0) .. ' ' .. format('%d %d', s1, s2)
        end
        redis.call('SET', key, v, 'PX', ms)
      end
    end
  end
end

local adm = 0
if admitted then adm = 1 end
if not big then
  if nkeys == 1 then return format('%d %d %d %d %d %d', adm, ok, reason, rem, retry, reset) end
  vals[1] = adm
  -- One format call, within Lua's limit on the arguments of a call.
  if nkeys <= 32 then return format('%d' .. string.rep(' %d', 5 * nkeys), unpack(vals)) end
end
if nkeys == 1 then vals = {adm, ok, reason, rem, retry, reset} else vals[1] = adm end
for i = 1, #vals do
  if type(vals[i]) == 'number' then vals[i] = format('%d', vals[i]) end
end
return table.concat(vals, ' ')
