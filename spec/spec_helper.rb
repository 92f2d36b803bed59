# frozen_string_literal: true

$LOAD_PATH.unshift(File.expand_path("../lib", __dir__))
require "gitrpc"
require "tmpdir"
require "fileutils"
require "timeout"

Dir[File.join(__dir__, "support", "*.rb")].sort.each { |f| require f }

RSpec.configure do |config|
  config.include GitHelpers
  config.disable_monkey_patching!
  config.order = :random
  config.expect_with(:rspec) { |c| c.syntax = :expect }

  # GITRPC_GC_STRESS=1: every call into the extension runs under GC.stress (a GC at every
  # allocation), so a VALUE it forgets to mark is collected, and its use fails, at once.
  # (The specs' own git plumbing runs normally, or the suite would take hours.)
  GCStress.install if ENV["GITRPC_GC_STRESS"] == "1"

  # No example may leave a git process behind.
  config.after do
    leftover = Timeout.timeout(5) do
      loop do
        procs = GitHelpers.git_children
        break procs if procs.empty?

        sleep 0.02
      end
    rescue Timeout::Error
      GitHelpers.git_children
    end
    expect(leftover).to eq([]), "git processes left behind: #{leftover.inspect}"
  end
end
