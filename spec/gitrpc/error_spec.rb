# frozen_string_literal: true

require "spec_helper"

RSpec.describe GitRPC::RPCError do
  it "maps every gRPC error code to its own class with code and details" do
    expected = {
      1 => GitRPC::CanceledError, 2 => GitRPC::UnknownError, 3 => GitRPC::InvalidArgumentError,
      4 => GitRPC::DeadlineExceededError, 5 => GitRPC::NotFoundError,
      6 => GitRPC::AlreadyExistsError, 7 => GitRPC::PermissionDeniedError,
      8 => GitRPC::ResourceExhaustedError, 9 => GitRPC::FailedPreconditionError,
      10 => GitRPC::AbortedError, 11 => GitRPC::OutOfRangeError, 12 => GitRPC::UnimplementedError,
      13 => GitRPC::InternalError, 14 => GitRPC::UnavailableError, 15 => GitRPC::DataLossError,
      16 => GitRPC::UnauthenticatedError
    }
    expected.each do |code, klass|
      e = described_class.from_status(code, "details #{code}")
      expect(e).to be_an_instance_of(klass)
      expect(e).to be_a(GitRPC::Error).and be_a(StandardError)
      expect(e.code).to eq(code)
      expect(e.details).to eq("details #{code}")
      expect(e.message).to include("details #{code}")
    end
    expect(described_class.from_status(99, "odd")).to be_an_instance_of(GitRPC::UnknownError)
  end

  it "can be raised by applications with the class's code" do
    expect { raise GitRPC::NotFoundError, "gone" }.to raise_error(GitRPC::NotFoundError) { |e|
      expect(e.code).to eq(5)
      expect(e.details).to eq("gone")
    }
  end
end
