-- Which of a worker's runs were cancelled while they ran. ARGV: P, then run ids.
-- Returns the ids still active with a cancel request.
local asked = {}
for i = 2, #ARGV do
  local state = redis.call('HMGET', K_RUN(ARGV[i]), 'st', 'cxl')
  if state[1] == 'active' and state[2] then asked[#asked + 1] = ARGV[i] end
end
return asked
