-- Runs by id, each flat ({field, value, ...}, as its hash holds it) from its hash or the
-- archive, {} for one that is gone. ARGV: P, then run ids.
local out = {}
for i = 2, #ARGV do out[#out + 1] = run_flat(ARGV[i]) end
return out
