using TorchSharp;
using WeakSeg.Methods.WeakTr;
using WeakSeg.Models.Vit;
using WeakSeg.Tests.Support;
using static TorchSharp.torch;

namespace WeakSeg.Tests.Methods.WeakTr;

/// <summary>Adaptive attention fusion and the fine CAM against hand computations (plain double loops, no torch).</summary>
[Collection("Torch")]
public class WeakTrFusionTests
{
    /// <summary>K = 1 block, H = 2 heads, C = 2 classes, 2×2 patches (N = 4, T = 6).</summary>
    static WeakTrConfig HandConfig(WeakTrFusion fusion, WeakTrPooling pooling = WeakTrPooling.Average) => new()
    {
        NumClasses = 2,
        Fusion = fusion,
        Pooling = pooling,
        FfnHidden = 2,
        Backbone = new VitConfig { ImageSize = 16, PatchSize = 8, EmbedDim = 8, Depth = 1, NumHeads = 2, DropPathRate = 0 },
    };

    const int C = 2, N = 4, T = C + N;

    /// <summary>Hand-chosen, deliberately asymmetric attention values a[h][i, j] (not a softmax, so both poolings differ per head).</summary>
    static double[][,] HandAttention()
    {
        var a = new double[2][,];
        for (int h = 0; h < 2; h++)
        {
            a[h] = new double[T, T];
            for (int i = 0; i < T; i++)
                for (int j = 0; j < T; j++)
                    a[h][i, j] = ((i * 7 + j * 3 + h * 5) % 11) / 10.0;
        }
        return a;
    }

    static Tensor ToTensor(double[][,] maps, int batchIndexCount = 1)
    {
        int h = maps.Length, t = maps[0].GetLength(0);
        var values = new float[h * t * t];
        for (int k = 0; k < h; k++)
            for (int i = 0; i < t; i++)
                for (int j = 0; j < t; j++)
                    values[(k * t + i) * t + j] = (float)maps[k][i, j];
        return torch.tensor(values).reshape(batchIndexCount, h, t, t);
    }

    static readonly double[,] Ffn1 = { { 1.0, -1.0 }, { 0.5, 2.0 } };    // Linear(KH=2 → 2).weight [out, in]
    static readonly double[,] Ffn2 = { { 1.0, 0.5 }, { -1.0, 2.0 } };    // Linear(2 → KH=2).weight

    static void SetFfn(WeakTrModel model)
    {
        using var noGrad = torch.no_grad();
        using var w1 = torch.tensor(new float[] { 1, -1, 0.5f, 2 }).reshape(2, 2);
        using var w2 = torch.tensor(new float[] { 1, 0.5f, -1, 2 }).reshape(2, 2);
        model.AttentionFusion!.InputLayer.weight!.copy_(w1);
        model.AttentionFusion!.OutputLayer.weight!.copy_(w2);
    }

    /// <summary>W' = σ(Ffn2 · ReLU(Ffn1 · W)).</summary>
    static double[] HandFfn(double[] w)
    {
        var hidden = new double[2];
        for (int o = 0; o < 2; o++) hidden[o] = Math.Max(0, Ffn1[o, 0] * w[0] + Ffn1[o, 1] * w[1]);
        var result = new double[2];
        for (int o = 0; o < 2; o++) result[o] = 1 / (1 + Math.Exp(-(Ffn2[o, 0] * hidden[0] + Ffn2[o, 1] * hidden[1])));
        return result;
    }

    /// <summary>Eq. 4–6 by hand: ĈA[c, p], P̂A[j, k] and fine[c, j] = Σ_k P̂A[j, k] · coarse[c, k] · ĈA[c, k].</summary>
    static (double[,] Ca, double[,] Pa, double[,] Fine) HandFineCam(double[][,] a, double[] weights, double[,] coarse, bool transposePa = false)
    {
        int kh = a.Length, c = coarse.GetLength(0), n = coarse.GetLength(1);
        var ca = new double[c, n];
        var pa = new double[n, n];
        for (int i = 0; i < kh; i++)
        {
            for (int cls = 0; cls < c; cls++)
                for (int p = 0; p < n; p++) ca[cls, p] += weights[i] * a[i][cls, c + p] / kh;
            for (int j = 0; j < n; j++)
                for (int k = 0; k < n; k++) pa[j, k] += weights[i] * a[i][c + j, c + k] / kh;
        }
        var fine = new double[c, n];
        for (int cls = 0; cls < c; cls++)
            for (int j = 0; j < n; j++)
                for (int k = 0; k < n; k++)
                    fine[cls, j] += (transposePa ? pa[k, j] : pa[j, k]) * coarse[cls, k] * ca[cls, k];
        return (ca, pa, fine);
    }

    static Tensor Grid(double[,] values, int h, int w) =>
        torch.tensor(values.Cast<double>().Select(v => (float)v).ToArray()).reshape(1, values.GetLength(0), h, w);

    static readonly double[,] Coarse = { { 0.5, 1.5, 0.0, 2.0 }, { 1.0, 0.25, 3.0, 0.75 } };

    [Theory]
    [InlineData(WeakTrPooling.Average)]
    [InlineData(WeakTrPooling.Max)]
    public void Pooled_attention_map_weights_fused_attention_and_fine_cam_match_a_hand_computation(WeakTrPooling pooling)
    {
        torch.manual_seed(41);
        using var model = new WeakTrModel(HandConfig(WeakTrFusion.PooledAttentionMaps, pooling));
        SetFfn(model);
        using var scope = torch.NewDisposeScope();
        var a = HandAttention();
        var blocks = new[] { ToTensor(a) };
        var attention = WeakTrMaps.HeadMajorAttention(blocks);                   // K = 1: map index = head

        // W = pooled map per head; W' = FFN(W).
        var w = a.Select(m => pooling == WeakTrPooling.Average ? m.Cast<double>().Average() : m.Cast<double>().Max()).ToArray();
        var pooled = WeakTrMaps.PoolMaps(attention, pooling);
        TensorAssert.Close(torch.tensor(w.Select(v => (float)v).ToArray()).reshape(1, 2), pooled, 1e-6, "W");
        var expectedWeights = HandFfn(w);
        var weights = model.HeadWeights(blocks, []);
        TensorAssert.Close(torch.tensor(expectedWeights.Select(v => (float)v).ToArray()).reshape(1, 2), weights, 1e-6, "W'");
        Assert.True(Math.Abs(expectedWeights[0] - expectedWeights[1]) > 0.05, "the example must weight the heads differently");

        var (ca, pa, fine) = HandFineCam(a, expectedWeights, Coarse);
        var fused = WeakTrMaps.FuseHeads(attention, weights);
        var crossAttention = WeakTrMaps.CrossAttention(fused, C, 2, 2);
        var patchAttention = WeakTrMaps.PatchAttention(fused, C);
        TensorAssert.Close(Grid(ca, 2, 2), crossAttention, 1e-6, "ĈA");
        TensorAssert.Close(torch.tensor(pa.Cast<double>().Select(v => (float)v).ToArray()).reshape(1, N, N), patchAttention, 1e-6, "P̂A");
        var fineCam = WeakTrMaps.FineCam(Grid(Coarse, 2, 2), crossAttention, patchAttention);
        TensorAssert.Close(Grid(fine, 2, 2), fineCam, 1e-6, "fine CAM");

        // The orientation matters in this example: P̂A is not symmetric, so the transposed product would differ.
        var (_, _, transposed) = HandFineCam(a, expectedWeights, Coarse, transposePa: true);
        Assert.True(Enumerable.Range(0, C * N).Max(i => Math.Abs(transposed[i / N, i % N] - fine[i / N, i % N])) > 0.01);
    }

    [Fact]
    public void One_hand_value_spelled_out()
    {
        // Head weights 1 and 0 pick head 0 alone, divided by KH = 2. ĈA[0, p] = a0[0, 2 + p] / 2, P̂A[j, k] = a0[2 + j, 2 + k] / 2.
        using var scope = torch.NewDisposeScope();
        var a = HandAttention();
        var attention = ToTensor(a);
        var fused = WeakTrMaps.FuseHeads(attention, torch.tensor(new float[] { 1, 0 }).reshape(1, 2));
        // a0[0, 3] = (0 + 9 + 0) % 11 / 10 = 0.9 → ĈA[0, patch 1] = 0.45; a0[3, 4] = (21 + 12) % 11 / 10 = 0 → P̂A[1, 2] = 0.
        Assert.Equal(0.45f, WeakTrMaps.CrossAttention(fused, C, 2, 2)[0, 0, 0, 1].item<float>(), 6);
        Assert.Equal(0f, WeakTrMaps.PatchAttention(fused, C)[0, 1, 2].item<float>(), 6);
        // a0[2, 3] = (14 + 9) % 11 / 10 = 0.1 → P̂A[0, 1] = 0.05 while a0[3, 2] = (21 + 6) % 11 / 10 = 0.5 → P̂A[1, 0] = 0.25.
        Assert.Equal(0.05f, WeakTrMaps.PatchAttention(fused, C)[0, 0, 1].item<float>(), 6);
        Assert.Equal(0.25f, WeakTrMaps.PatchAttention(fused, C)[0, 1, 0].item<float>(), 6);
    }

    [Fact]
    public void Mean_sum_is_the_plain_average_of_all_maps_and_one_over_k_times_mctformers_layer_sum()
    {
        torch.manual_seed(42);
        var config = HandConfig(WeakTrFusion.MeanSum) with { Backbone = HandConfig(WeakTrFusion.MeanSum).Backbone with { Depth = 3 } };
        using var model = new WeakTrModel(config);
        Assert.Null(model.AttentionFusion);
        Assert.DoesNotContain(model.named_parameters(), p => p.name.StartsWith("adaptive_attention_fusion", StringComparison.Ordinal));
        using var scope = torch.NewDisposeScope();
        var attention = Enumerable.Range(0, 3).Select(_ => torch.rand(2, 2, T, T)).ToList();
        var maps = WeakTrMaps.HeadMajorAttention(attention);
        var weights = model.HeadWeights(attention, []);
        TensorAssert.Close(torch.ones(2, 6), weights, 0, "mean-sum weights");
        var fused = WeakTrMaps.FuseHeads(maps, weights);
        TensorAssert.Close(fused, WeakTrMaps.FuseBlocks(attention, weights), 1e-6, "per-block fusion");
        var plainAverage = torch.stack(attention, 0).mean(new long[] { 0, 2 });                    // over layers and heads
        TensorAssert.Close(plainAverage, fused, 1e-6, "plain average");
        // MCTformer's class-to-patch map sums the head means over layers: mean-sum's ĈA is that divided by K.
        var mctformerSum = AttentionMaps.ClassToPatch(AttentionMaps.HeadMean(attention), C, 3, 2, 2);
        TensorAssert.Close(mctformerSum / 3, WeakTrMaps.CrossAttention(fused, C, 2, 2), 1e-6, "1/K · MCTformer");
    }

    [Fact]
    public void Fused_maps_use_the_official_head_major_order()
    {
        // K = 2 blocks of H = 2 heads; weight only map i = h·K + k = 0·2 + 1 (head 0 of block 1).
        using var scope = torch.NewDisposeScope();
        var attention = new[] { torch.rand(1, 2, T, T), torch.rand(1, 2, T, T) };
        var maps = WeakTrMaps.HeadMajorAttention(attention);
        var oneMap = torch.tensor(new float[] { 0, 4, 0, 0 }).reshape(1, 4);
        var fused = WeakTrMaps.FuseHeads(maps, oneMap);
        TensorAssert.Close(attention[1].select(1, 0), fused, 1e-6, "block 1 head 0");   // 4 / KH = 1
        TensorAssert.Close(attention[1].select(1, 0), WeakTrMaps.FuseBlocks(attention, oneMap), 1e-6, "per-block: block 1 head 0");
        var pooled = WeakTrMaps.PoolMaps(maps, WeakTrPooling.Max);
        Assert.Equal(attention[0][0, 1].max().item<float>(), pooled[0, 2].item<float>());   // head 1 of block 0 = 1·2 + 0
    }

    [Fact]
    public void Average_pooling_of_softmax_attention_is_one_over_t_for_every_head()
    {
        // A fact the paper does not mention: each softmax row sums to 1, so a global average over the T×T map is 1/T,
        // whatever the image. With average pooling the AAF input is a constant vector; max pooling does depend on the image.
        torch.manual_seed(43);
        var config = HandConfig(WeakTrFusion.PooledAttentionMaps);
        using var model = new WeakTrModel(config with { Backbone = config.Backbone with { Depth = 2 } });
        model.eval();
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        NonUniformInit.Apply(model);
        using var output = model.Forward(torch.randn(3, 3, 16, 16));
        var maps = WeakTrMaps.HeadMajorAttention(output.Backbone.Attentions);
        var average = WeakTrMaps.PoolMaps(maps, WeakTrPooling.Average);
        TensorAssert.Close(torch.full(new long[] { 3, 4 }, 1.0 / T), average, 1e-6, "1/T");
        var max = WeakTrMaps.PoolMaps(maps, WeakTrPooling.Max);
        Assert.True((max[0] - max[1]).abs().max().item<float>() > 1e-3, "max pooling differs between images");
        // Hence W' of the pooled-attention-maps variant is the same for every image under average pooling.
        TensorAssert.Close(output.HeadWeights[0].expand(3, -1), output.HeadWeights, 1e-6, "same W' per image");
    }

    [Fact]
    public void Bad_shapes_are_reported()
    {
        using var scope = torch.NewDisposeScope();
        var attention = torch.rand(1, 2, T, T);
        Assert.Contains("head weights must be [1, 2]", Assert.Throws<WeakSegException>(() => WeakTrMaps.FuseHeads(attention, torch.ones(1, 3))).Message);
        Assert.Contains("expected 2 class tokens + 3×3 patches", Assert.Throws<WeakSegException>(() => WeakTrMaps.CrossAttention(torch.rand(1, T, T), 2, 3, 3)).Message);
        Assert.Contains("same shape", Assert.Throws<WeakSegException>(() => WeakTrMaps.HeadMajorAttention(new[] { torch.rand(1, 2, T, T), torch.rand(1, 2, 5, 5) })).Message);
    }
}
