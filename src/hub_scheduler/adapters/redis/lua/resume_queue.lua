-- Resume the whole queue and wake idle workers (a script, not a pipeline: a Cluster refuses
-- to pipeline a publish). ARGV: P.
redis.call('DEL', K_PAUSED)
wake()
return true
