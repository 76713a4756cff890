using TorchSharp;
using WeakSeg.Segmentation;
using static TorchSharp.torch;

namespace WeakSeg.Tests.Segmentation;

[Collection("Torch")]
public class SlidingWindowTests
{
    [Fact]
    public void Window_starts_cover_the_axis_and_end_at_the_border()
    {
        Assert.Equal(new[] { 0 }, SlidingWindow.Starts(4, 4, 3));
        Assert.Equal(new[] { 0 }, SlidingWindow.Starts(3, 4, 3));
        Assert.Equal(new[] { 0, 3, 6 }, SlidingWindow.Starts(10, 4, 3));
        Assert.Equal(new[] { 0, 3, 6, 7 }, SlidingWindow.Starts(11, 4, 3));
        // windows [0,3] [3,6] [6,9] [7,10] → coverage per column
        var counts = SlidingWindow.CoverageCounts(2, 11, 4, 3);
        int[] row = [1, 1, 1, 2, 1, 1, 2, 2, 2, 2, 1];
        Assert.Equal(row.Concat(row).ToArray(), counts);
    }

    // A per-pixel (hence translation-equivariant) "model": channel 0 = r, channel 1 = 2g + r.
    static Tensor Pointwise(Tensor x) => torch.cat(new[] { x.narrow(1, 0, 1), x.narrow(1, 1, 1).mul(2).add(x.narrow(1, 0, 1)) }, 1);

    [Fact]
    public void Translation_equivariant_model_gives_the_same_result_as_one_pass_over_the_whole_image()
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(4);
        foreach (var (h, w) in new[] { (8, 8), (11, 13), (5, 19), (3, 6) })
        {
            var image = torch.randn(1, 3, h, w);
            var stitched = SlidingWindow.Logits(image, crop: 8, stride: 5, Pointwise, maxBatch: 3);
            Assert.Equal(new long[] { 1, 2, h, w }, stitched.shape);
            Assert.True(stitched.sub(Pointwise(image)).abs().max().item<float>() < 1e-6, $"{h}×{w}");
        }
    }

    [Fact]
    public void Window_outputs_are_averaged_over_the_windows_covering_each_pixel()
    {
        using var scope = torch.NewDisposeScope();
        // The model outputs each pixel's x coordinate inside its window; the stitched value at column x is the mean of
        // (x − x0) over the windows covering x.
        int h = 9, w = 13, crop = 6, stride = 4;
        var image = torch.zeros(1, 3, h, w);
        var windowX = torch.arange(crop, dtype: ScalarType.Float32).reshape(1, 1, 1, crop);
        var stitched = SlidingWindow.Logits(image, crop, stride, x => windowX.expand(x.shape[0], 1, crop, crop), maxBatch: 2);
        var starts = SlidingWindow.Starts(w, crop, stride);                    // 0, 4, 7
        Assert.Equal(new[] { 0, 4, 7 }, starts);
        for (int x = 0; x < w; x++)
        {
            var covering = starts.Where(x0 => x >= x0 && x < x0 + crop).Select(x0 => (double)(x - x0)).ToArray();
            for (int y = 0; y < h; y += 4) Assert.Equal(covering.Average(), stitched[0, 0, y, x].item<float>(), 5);
        }
        // image exactly one crop: a single window, identical to one pass
        var one = SlidingWindow.Logits(torch.zeros(1, 3, crop, crop), crop, stride, x => windowX.expand(x.shape[0], 1, crop, crop));
        Assert.True(one.sub(windowX.expand(1, 1, crop, crop)).abs().max().item<float>() == 0);
    }
}
