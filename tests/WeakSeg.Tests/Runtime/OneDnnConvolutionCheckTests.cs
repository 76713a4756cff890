using TorchSharp;
using WeakSeg.Runtime;

namespace WeakSeg.Tests.Runtime;

/// <summary>The oneDNN convolution check after libtorch loads: oneDNN stays on only where its float32 convolution is right,
/// and convolutions with channel tails (the inputs oneDNN got wrong on an AVX-512 AMD machine) equal float64.</summary>
[Collection("Torch")]
public class OneDnnConvolutionCheckTests
{
    [Fact]
    public void The_check_ran_and_left_onednn_on_exactly_where_it_is_right()
    {
        TorchRuntime.EnsureLoaded();
        var status = OneDnnConvolutionCheck.Status;
        Assert.True(status.State is OneDnnConvolutionState.Correct or OneDnnConvolutionState.WrongTurnedOff
                        or OneDnnConvolutionState.NotExported, $"state {status.State}: {status.Detail}");
        if (status.State == OneDnnConvolutionState.NotExported) return;
        Assert.Equal(status.State == OneDnnConvolutionState.Correct, OneDnnConvolutionCheck.UserEnabled);
        // whatever was decided, the convolution libtorch now runs passes the probe
        Assert.True(OneDnnConvolutionCheck.ProbeError() <= OneDnnConvolutionCheck.Tolerance, status.Detail);
    }

    [Theory]
    [InlineData(17, 3, 1)]
    [InlineData(24, 3, 1)]
    [InlineData(33, 3, 2)]
    [InlineData(50, 5, 1)]
    [InlineData(64, 3, 1)]
    public void Convolution_with_any_channel_count_matches_float64_forward_and_backward(int inChannels, int kernel, int dilation)
    {
        TorchRuntime.EnsureLoaded();
        using var scope = torch.NewDisposeScope();
        var gen = new torch.Generator(7);
        var x64 = torch.randn([3, inChannels, 9, 7], dtype: torch.float64, generator: gen);
        var w64 = torch.randn([5, inChannels, kernel, kernel], dtype: torch.float64, generator: gen).div(Math.Sqrt(inChannels * kernel * kernel));
        var upstream = torch.randn([3, 5, 9, 7], dtype: torch.float64, generator: gen);
        var (y32, gx32, gw32) = Run(x64.to(torch.float32), w64.to(torch.float32), upstream.to(torch.float32), kernel, dilation);
        var (y64, gx64, gw64) = Run(x64, w64, upstream, kernel, dilation);
        AssertClose(y64, y32, "output");
        AssertClose(gx64, gx32, "input gradient");
        AssertClose(gw64, gw32, "weight gradient");
    }

    static (torch.Tensor, torch.Tensor, torch.Tensor) Run(torch.Tensor x, torch.Tensor w, torch.Tensor upstream, int kernel, int dilation)
    {
        var xg = x.detach().requires_grad_(true);
        var wg = w.detach().requires_grad_(true);
        long pad = dilation * (kernel / 2);
        var y = torch.nn.functional.conv2d(xg, wg, padding: [pad, pad], dilation: [dilation, dilation]);
        y.mul(upstream).sum().backward();
        return (y.detach(), xg.grad!.detach(), wg.grad!.detach());
    }

    static void AssertClose(torch.Tensor expected, torch.Tensor actual, string what)
    {
        double scale = expected.abs().max().item<double>();
        double error = actual.to(torch.float64).sub(expected).abs().max().item<double>() / scale;
        Assert.True(error < 1e-4, $"{what}: relative error {error:g3} (oneDNN check: {OneDnnConvolutionCheck.Status.Detail})");
    }
}
