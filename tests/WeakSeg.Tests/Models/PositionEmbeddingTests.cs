using TorchSharp;
using WeakSeg.Models.Vit;
using WeakSeg.Tests.Support;
using static TorchSharp.torch;

namespace WeakSeg.Tests.Models;

[Collection("Torch")]
public class PositionEmbeddingTests
{
    const int Prefix = 2, Side = 4, Dim = 3;

    static Tensor RandomEmbedding(int seed)
    {
        torch.manual_seed(seed);
        return torch.randn(1, Prefix + Side * Side, Dim);
    }

    [Theory]
    [InlineData(PositionEmbeddingResize.DinoScaleFactor)]
    [InlineData(PositionEmbeddingResize.TimmSize)]
    public void Same_grid_is_the_identity(PositionEmbeddingResize policy)
    {
        using var pos = RandomEmbedding(1);
        using var resized = PositionEmbedding.Resize(pos, Prefix, Side, Side, policy);
        TensorAssert.Close(pos, resized, 0, "identity");
    }

    [Theory]
    [InlineData(PositionEmbeddingResize.DinoScaleFactor, 6, 6)]
    [InlineData(PositionEmbeddingResize.DinoScaleFactor, 3, 5)]
    [InlineData(PositionEmbeddingResize.TimmSize, 6, 6)]
    [InlineData(PositionEmbeddingResize.TimmSize, 2, 7)]
    public void Constant_grid_stays_constant_and_class_rows_are_unchanged(PositionEmbeddingResize policy, int h, int w)
    {
        using var scope = torch.NewDisposeScope();
        var classRows = torch.tensor(new float[] { 1, 2, 3, -4, -5, -6 }).reshape(1, Prefix, Dim);
        var grid = torch.tensor(new float[] { 0.5f, -1.25f, 7f }).reshape(1, 1, Dim).expand(1, Side * Side, Dim);
        var pos = torch.cat(new[] { classRows, grid }, 1);
        var resized = PositionEmbedding.Resize(pos, Prefix, h, w, policy);
        Assert.Equal(new long[] { 1, Prefix + h * w, Dim }, resized.shape);
        TensorAssert.Close(classRows, resized.narrow(1, 0, Prefix), 0, "class rows");
        TensorAssert.Close(grid.narrow(1, 0, 1).expand(1, h * w, Dim), resized.narrow(1, Prefix, h * w), 1e-6, "constant grid");
    }

    /// <summary>Cubic convolution kernel (Keys) with parameter a.</summary>
    static double Cubic(double x, double a)
    {
        x = Math.Abs(x);
        if (x <= 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
        if (x < 2) return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a;
        return 0;
    }

    /// <summary>1-D resampling matrix [out, in] of PyTorch bicubic (a = −0.75, border replicate) driven by a given scale factor.</summary>
    static double[,] BicubicWithScale(int inSize, int outSize, double scale)
    {
        var m = new double[outSize, inSize];
        for (int o = 0; o < outSize; o++)
        {
            double src = (o + 0.5) / scale - 0.5;
            int floor = (int)Math.Floor(src);
            double t = src - floor;
            for (int k = -1; k <= 2; k++)
            {
                int index = Math.Clamp(floor + k, 0, inSize - 1);
                m[o, index] += Cubic(k - t, -0.75);
            }
        }
        return m;
    }

    /// <summary>1-D resampling matrix of PyTorch's antialiased bicubic (a = −0.5, PIL style, truncated and renormalised at borders).</summary>
    static double[,] AntialiasedBicubic(int inSize, int outSize)
    {
        var m = new double[outSize, inSize];
        double scale = (double)inSize / outSize;
        double support = 2 * Math.Max(scale, 1);
        double inverse = 1 / Math.Max(scale, 1);
        for (int o = 0; o < outSize; o++)
        {
            double center = scale * (o + 0.5);
            int lo = Math.Max((int)(center - support + 0.5), 0);
            int hi = Math.Min((int)(center + support + 0.5), inSize);
            double total = 0;
            for (int j = lo; j < hi; j++) total += Cubic((j - center + 0.5) * inverse, -0.5);
            for (int j = lo; j < hi; j++) m[o, j] = Cubic((j - center + 0.5) * inverse, -0.5) / total;
        }
        return m;
    }

    /// <summary>Separable resampling of each channel of a [s, s, D] grid stored as rows (row-major patches).</summary>
    static float[] Resample(float[] rows, int side, int dim, double[,] mh, double[,] mw)
    {
        int oh = mh.GetLength(0), ow = mw.GetLength(0);
        var result = new float[oh * ow * dim];
        for (int y = 0; y < oh; y++)
            for (int x = 0; x < ow; x++)
                for (int d = 0; d < dim; d++)
                {
                    double v = 0;
                    for (int i = 0; i < side; i++)
                        for (int j = 0; j < side; j++)
                            v += mh[y, i] * mw[x, j] * rows[(i * side + j) * dim + d];
                    result[(y * ow + x) * dim + d] = (float)v;
                }
        return result;
    }

    [Theory]
    [InlineData(6, 6)]
    [InlineData(5, 3)]
    public void Dino_rule_matches_a_brute_force_bicubic_driven_by_the_plus_0_1_scale_factor(int h, int w)
    {
        using var scope = torch.NewDisposeScope();
        var pos = RandomEmbedding(2);
        var rows = pos.narrow(1, Prefix, Side * Side).contiguous().data<float>().ToArray();
        var expected = Resample(rows, Side, Dim, BicubicWithScale(Side, h, (h + 0.1) / Side), BicubicWithScale(Side, w, (w + 0.1) / Side));
        var resized = PositionEmbedding.Resize(pos, Prefix, h, w, PositionEmbeddingResize.DinoScaleFactor);
        TensorAssert.Close(torch.tensor(expected).reshape(1, h * w, Dim), resized.narrow(1, Prefix, h * w), 1e-5, "dino");

        // The +0.1 scale factor matters: resampling with the plain size ratio gives different values.
        var sizeRatio = Resample(rows, Side, Dim, BicubicWithScale(Side, h, (double)h / Side), BicubicWithScale(Side, w, (double)w / Side));
        Assert.True(expected.Zip(sizeRatio).Max(p => Math.Abs(p.First - p.Second)) > 1e-3);
    }

    [Theory]
    [InlineData(6, 6)]
    [InlineData(2, 3)]
    public void Timm_rule_matches_a_brute_force_antialiased_bicubic(int h, int w)
    {
        using var scope = torch.NewDisposeScope();
        var pos = RandomEmbedding(3);
        var rows = pos.narrow(1, Prefix, Side * Side).contiguous().data<float>().ToArray();
        var expected = Resample(rows, Side, Dim, AntialiasedBicubic(Side, h), AntialiasedBicubic(Side, w));
        var resized = PositionEmbedding.Resize(pos, Prefix, h, w, PositionEmbeddingResize.TimmSize);
        TensorAssert.Close(torch.tensor(expected).reshape(1, h * w, Dim), resized.narrow(1, Prefix, h * w), 1e-5, "timm");
    }

    [Fact]
    public void Non_square_source_grid_is_rejected()
    {
        using var pos = torch.zeros(1, Prefix + 12, Dim);
        var e = Assert.Throws<WeakSegException>(() => PositionEmbedding.Resize(pos, Prefix, 4, 4, PositionEmbeddingResize.DinoScaleFactor));
        Assert.Contains("12 patch rows", e.Message);
    }
}
