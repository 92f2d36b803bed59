# frozen_string_literal: true

# Wraps every method of the native classes so it runs under GC.stress (GITRPC_GC_STRESS=1).
# GC.stress is process-wide and calls overlap across threads, so a count of the calls in
# flight decides: on while any runs, off when the last one returns (saving and restoring the
# flag per call would leave it on when two threads interleave).
module GCStress
  LOCK = Mutex.new
  @active = 0

  class << self
    def install
      [GitRPC::Native::Client, GitRPC::Native::Server, GitRPC::Native::Stream, GitRPC::Native::MergeProposal].each do |klass|
        klass.prepend(wrapper(klass.instance_methods(false)))
        klass.singleton_class.prepend(wrapper(klass.singleton_methods(false)))
      end
    end

    def enter
      LOCK.synchronize { GC.stress = true if (@active += 1) == 1 }
    end

    def leave
      LOCK.synchronize { GC.stress = false if (@active -= 1).zero? }
    end

    private

    def wrapper(names)
      Module.new do
        names.each do |name|
          define_method(name) do |*args, &block|
            GCStress.enter
            begin
              super(*args, &block)
            ensure
              GCStress.leave
            end
          end
        end
      end
    end
  end
end
