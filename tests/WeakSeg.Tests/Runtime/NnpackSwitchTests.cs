using TorchSharp;
using WeakSeg.Runtime;

namespace WeakSeg.Tests.Runtime;

/// <summary>The NNPACK probe after libtorch loads: off exactly where NNPACK cannot run, and convolutions still right.</summary>
[Collection("Torch")]
public class NnpackSwitchTests
{
    [Fact]
    public void NNPACK_is_turned_off_exactly_where_it_cannot_run()
    {
        TorchRuntime.EnsureLoaded();
        Assert.True(NnpackSwitch.State is NnpackState.Available or NnpackState.UnavailableTurnedOff, $"state {NnpackSwitch.State}");
        // the user flag libtorch reads on every convolution: on where NNPACK initialised, off where it reported it cannot run
        Assert.Equal(NnpackSwitch.State == NnpackState.Available, NnpackSwitch.UserEnabled);
    }

    [Fact]
    public void A_convolution_after_the_probe_equals_the_sum_written_out()
    {
        TorchRuntime.EnsureLoaded();
        using var scope = torch.NewDisposeScope();
        var x = torch.arange(2 * 3 * 6 * 5, dtype: torch.float32).reshape(2, 3, 6, 5).div(50);
        var w = torch.arange(4 * 3 * 3 * 3, dtype: torch.float32).reshape(4, 3, 3, 3).sub(50).div(40);
        var y = torch.nn.functional.conv2d(x, w, padding: [1, 1]);
        var xs = x.data<float>().ToArray();
        var ws = w.data<float>().ToArray();
        var ys = y.data<float>().ToArray();
        for (int n = 0; n < 2; n++)
        for (int o = 0; o < 4; o++)
        for (int i = 0; i < 6; i++)
        for (int j = 0; j < 5; j++)
        {
            double sum = 0;
            for (int c = 0; c < 3; c++)
            for (int di = -1; di <= 1; di++)
            for (int dj = -1; dj <= 1; dj++)
            {
                int r = i + di, q = j + dj;
                if (r < 0 || r >= 6 || q < 0 || q >= 5) continue;
                sum += xs[((n * 3 + c) * 6 + r) * 5 + q] * ws[((o * 3 + c) * 3 + di + 1) * 3 + dj + 1];
            }
            Assert.Equal(sum, ys[((n * 4 + o) * 6 + i) * 5 + j], 4);
        }
    }
}
