# frozen_string_literal: true

# Spawn cost inside a Ruby process with a large heap: a gitrpc call that runs git
# (CommitIsAncestor → `git merge-base --is-ancestor`, through an in-process server, so the
# Rust executor posix_spawns git) against Ruby starting the same git itself with
# Kernel#fork + exec, and with Process.spawn.
#
#   ruby -I lib bench/ruby_spawn.rb [--smoke] [--json FILE] GIB...
#
# Prints a Markdown table (p50/p99 per heap size).

require "gitrpc"
require "json"
require "tmpdir"
require "fileutils"

smoke = ARGV.delete("--smoke")
json_at = ARGV.index("--json")
json_file = json_at && ARGV.slice!(json_at, 2).last
sizes = ARGV.map(&:to_f)
sizes = [0] if sizes.empty?
iters = smoke ? 3 : 30

GIT = ENV.fetch("GIT", "git")
def git(dir, *args)
  system(GIT, "-C", dir, *args, out: File::NULL, err: File::NULL, exception: true)
end

def pct(samples, q)
  s = samples.sort
  s[[(q * s.size).ceil - 1, 0].max]
end

def time_ms
  t = Process.clock_gettime(Process::CLOCK_MONOTONIC)
  yield
  (Process.clock_gettime(Process::CLOCK_MONOTONIC) - t) * 1000
end

Dir.mktmpdir("gitrpc-bench") do |dir|
  storage = File.join(dir, "repos")
  repo_dir = File.join(storage, "p.git")
  FileUtils.mkdir_p(repo_dir)
  git(repo_dir, "init", "-q", "--bare")
  env = { "GIT_AUTHOR_NAME" => "b", "GIT_AUTHOR_EMAIL" => "b@b", "GIT_COMMITTER_NAME" => "b",
          "GIT_COMMITTER_EMAIL" => "b@b" }
  tree = IO.popen([GIT, "-C", repo_dir, "mktree"], "r+") { |io| io.close_write; io.read.strip }
  c1 = IO.popen(env, [GIT, "-C", repo_dir, "commit-tree", tree, "-m", "one"], &:read).strip
  c2 = IO.popen(env, [GIT, "-C", repo_dir, "commit-tree", tree, "-p", c1, "-m", "two"], &:read).strip
  git(repo_dir, "update-ref", "refs/heads/main", c2)

  client = GitRPC::Client.new(storages: { "default" => storage }, timeout: 30)
  repo = client.repository("default", "p.git")
  argv = [GIT, "-C", repo_dir, "merge-base", "--is-ancestor", c1, c2]
  methods = {
    "gitrpc call" => -> { repo.commit_is_ancestor?(c1, c2) or raise "not ancestor" },
    "fork + exec" => lambda {
      pid = fork { exec(*argv) }
      Process.wait(pid)
      $?.success? or raise "git failed"
    },
    "Process.spawn" => lambda {
      Process.wait(Process.spawn(*argv))
      $?.success? or raise "git failed"
    }
  }

  heap = []
  rows = sizes.map do |gib|
    # Grow the heap to `gib` GiB of touched memory (1 MiB strings).
    heap << ("x" * (1 << 20)) while heap.size < gib * 1024
    GC.start
    rss = File.read("/proc/self/status")[/VmRSS:\s+(\d+)/, 1].to_i / 1024.0 / 1024
    row = { "heap_gib" => gib, "rss_gib" => rss.round(2) }
    methods.each do |name, call|
      call.call # warm up
      samples = Array.new(iters) { time_ms(&call) }
      row[name] = { "p50_ms" => pct(samples, 0.5).round(2), "p99_ms" => pct(samples, 0.99).round(2) }
    end
    row
  end
  client.close

  puts "| Ruby heap (RSS) | #{methods.keys.map { |m| "#{m} p50 | #{m} p99" }.join(" | ")} |"
  puts "|---|#{"---|" * (methods.size * 2)}"
  rows.each do |r|
    cells = methods.keys.map { |m| format("%.2f ms | %.2f ms", r[m]["p50_ms"], r[m]["p99_ms"]) }
    puts "| #{format("%.2f GiB", r["rss_gib"])} | #{cells.join(" | ")} |"
  end
  if json_file
    File.write(json_file, JSON.pretty_generate({ "benchmark" => "ruby_spawn", "iters" => iters,
                                                 "command" => "git merge-base --is-ancestor", "rows" => rows }))
  end
end
