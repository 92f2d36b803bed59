# frozen_string_literal: true

# Each example runs in its own temp dir (`@dir`, removed afterwards) with an empty storage
# directory `storage` in it.
RSpec.shared_context "temp storage" do
  around do |example|
    in_tmpdir do |dir|
      @dir = dir
      example.run
    end
  end

  let(:storage) { File.join(@dir, "repos").tap { |d| FileUtils.mkdir_p(d) } }
end
