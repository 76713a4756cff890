using WeakSeg.Runtime;
using WeakSeg.Tests.Support;

namespace WeakSeg.Tests.Runtime;

/// <summary>`weakseg env` reports the oneDNN convolution check, and its environment variable is honoured in a fresh process.</summary>
public class OneDnnCliTests
{
    [Fact]
    public void Env_reports_the_check_and_the_environment_variable_turns_it_off_or_is_one_clear_error()
    {
        var (code, auto, err) = CliProcess.Run(["env", "--gemm-size", "0"]);
        Assert.True(code == 0, err);
        Assert.Contains(auto.Split('\n'), l => l.StartsWith("onednn convolution correct: ", StringComparison.Ordinal)
                                               || l.StartsWith("onednn convolution turned-off: wrong on this CPU", StringComparison.Ordinal)
                                               || l.StartsWith("onednn convolution unavailable", StringComparison.Ordinal));

        var (offCode, off, offErr) = CliProcess.Run(["env", "--gemm-size", "0"],
            new Dictionary<string, string> { [OneDnnConvolutionCheck.EnvironmentVariable] = "off" });
        Assert.True(offCode == 0, offErr);
        Assert.Contains($"onednn convolution off: turned off by {OneDnnConvolutionCheck.EnvironmentVariable}=off", off);

        var (badCode, badOut, bad) = CliProcess.Run(["env", "--gemm-size", "0"],
            new Dictionary<string, string> { [OneDnnConvolutionCheck.EnvironmentVariable] = "sometimes" });
        Assert.Equal(1, badCode);
        Assert.Equal("", badOut.Trim());
        Assert.Equal($"error: {OneDnnConvolutionCheck.EnvironmentVariable}=sometimes: expected auto (the default: check, turn off where wrong), on or off.", bad.Trim());
    }
}
