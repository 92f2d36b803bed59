# frozen_string_literal: true

# Unary read RPCs from Ruby: the gem's in-process server (RefExists, FindCommit, TreeEntry,
# GetBlob through GitRPC::Repository) against Ruby spawning the equivalent git per request
# (IO.popen with an argv, i.e. backticks without a shell), at several numbers of threads.
# The repository is the one `rpc_bench repo` builds (its directory is the argument).
#
#   ruby -I lib bench/ruby_reads.rb [--smoke] [--json FILE] [--secs S] [--repeats N]
#       [--threads 1,8,64] REPO_DIR
#
# Prints a Markdown table: best of the repeats (lowest p50 and p99, highest calls/s).

require "gitrpc"
require "json"

args = ARGV.dup
opt = lambda do |name, default|
  i = args.index(name)
  i ? args.slice!(i, 2).last : default
end
smoke = args.delete("--smoke")
json_file = opt.call("--json", nil)
secs = opt.call("--secs", smoke ? "0.1" : "1").to_f
repeats = opt.call("--repeats", smoke ? "1" : "3").to_i
threads = opt.call("--threads", smoke ? "1,8" : "1,8,64").split(",").map(&:to_i)
spawn_threads = threads.select { |t| t <= 8 }
dir = args.shift or abort "usage: ruby -I lib bench/ruby_reads.rb [options] REPO_DIR"

storage = File.join(dir, "repos")
repo_path = File.join(storage, "bench.git")
samples = Hash.new { |h, k| h[k] = [] }
File.foreach(File.join(dir, "samples.txt")) do |line|
  kind, *rest = line.chomp.split(" ", 3)
  samples[kind] << (rest.size == 1 ? rest.first : rest)
end
GIT = ENV.fetch("PATH").split(":").map { |d| File.join(d, "git") }.find { |g| File.executable?(g) }

def pct(sorted, q)
  sorted[[(q * sorted.size).ceil - 1, 0].max]
end

def now
  Process.clock_gettime(Process::CLOCK_MONOTONIC)
end

client = GitRPC::Client.new(storages: { "default" => storage }, timeout: 30)
repo = client.repository("default", "bench.git")

def git_out(repo_path, *args)
  out = IO.popen([GIT, "--git-dir", repo_path, *args], err: File::NULL, &:read)
  $?.success? or raise "git #{args.first} failed"
  out
end

rpcs = {
  "RefExists" => {
    gitrpc: ->(r) { repo.ref_exists?(samples["ref"][r % samples["ref"].size]) or raise "ref missing" },
    git: ->(r) { git_out(repo_path, "show-ref", "--verify", "--quiet", samples["ref"][r % samples["ref"].size]) }
  },
  "FindCommit" => {
    gitrpc: ->(r) { repo.find_commit(samples["commit"][r % samples["commit"].size]) or raise "commit missing" },
    git: ->(r) { git_out(repo_path, "cat-file", "commit", samples["commit"][r % samples["commit"].size]) }
  },
  "TreeEntry" => {
    gitrpc: lambda { |r|
      c, p = samples["entry"][r % samples["entry"].size]
      repo.tree_entry(c, p) or raise "entry missing"
    },
    git: lambda { |r|
      c, p = samples["entry"][r % samples["entry"].size]
      git_out(repo_path, "cat-file", "-p", "#{c}:#{p}")
    }
  },
  "GetBlob" => {
    gitrpc: ->(r) { repo.blob(samples["blob"][r % samples["blob"].size]) or raise "blob missing" },
    git: ->(r) { git_out(repo_path, "cat-file", "blob", samples["blob"][r % samples["blob"].size]) }
  }
}

# `n` threads call back to back for `secs`; best of `repeats` runs.
measure = lambda do |call, n|
  runs = Array.new(repeats) do |rep|
    Array.new(n) { |t| Thread.new { 3.times { |i| call.call(t * 7919 + i) } } }.each(&:join)
    t0 = now
    deadline = t0 + secs
    lat = Array.new(n) do |t|
      Thread.new do
        rng = Random.new(rep * 1000 + t)
        v = []
        while now < deadline
          s = now
          call.call(rng.rand(1 << 30))
          v << (now - s) * 1e6
        end
        v
      end
    end.flat_map(&:value).sort
    { "p50_us" => pct(lat, 0.5), "p99_us" => pct(lat, 0.99), "calls_per_s" => lat.size / (now - t0) }
  end
  { "p50_us" => runs.map { |r| r["p50_us"] }.min.round(1), "p99_us" => runs.map { |r| r["p99_us"] }.min.round(1),
    "calls_per_s" => runs.map { |r| r["calls_per_s"] }.max.round(1) }
end

def us(v)
  return "—" if v.nil?

  v < 1000 ? format("%.0f µs", v) : format("%.2f ms", v / 1000)
end

rows = []
rpcs.each do |name, calls|
  threads.each do |n|
    warn "ruby reads: #{name} x#{n}" unless smoke
    row = { "rpc" => name, "threads" => n, "gitrpc_in_process" => measure.call(calls[:gitrpc], n) }
    row["git_popen"] = measure.call(calls[:git], n) if spawn_threads.include?(n)
    rows << row
  end
end
client.close

puts "| RPC | threads | gitrpc (in-process) p50 / p99 | calls/s | git per call (IO.popen) p50 / p99 | calls/s | git ÷ gitrpc p50 |"
puts "|---|---|---|---|---|---|---|"
rows.each do |r|
  g = r["gitrpc_in_process"]
  s = r["git_popen"]
  spawn = s ? "#{us(s["p50_us"])} / #{us(s["p99_us"])} | #{s["calls_per_s"].round}" : "— | —"
  ratio = s ? format("%.0fx", s["p50_us"] / g["p50_us"]) : "—"
  puts "| #{r["rpc"]} | #{r["threads"]} | #{us(g["p50_us"])} / #{us(g["p99_us"])} | #{g["calls_per_s"].round} | #{spawn} | #{ratio} |"
end
if json_file
  File.write(json_file, JSON.pretty_generate({ "benchmark" => "ruby_reads", "secs_per_run" => secs, "repeats" => repeats,
                                               "aggregate" => "best of repeats: min p50, min p99, max calls/s",
                                               "repository" => dir, "rows" => rows }))
end
