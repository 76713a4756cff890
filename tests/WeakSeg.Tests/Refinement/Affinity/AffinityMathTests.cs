using TorchSharp;
using WeakSeg.Data;
using WeakSeg.Evaluation;
using WeakSeg.Refinement;
using WeakSeg.Refinement.Affinity;
using static TorchSharp.torch;

namespace WeakSeg.Tests.Refinement.Affinity;

[Collection("Torch")]
public class AffinityMathTests
{
    [Fact]
    public void Offsets_are_psa_forward_half_disc()
    {
        Assert.Equal(new[] { (0, 1), (1, -1), (1, 0), (1, 1) }, AffinityPairs.Offsets(2));
        var r5 = AffinityPairs.Offsets(5);
        Assert.Equal(34, r5.Count);                       // 4 + 9 + 9 + 7 + 5
        Assert.All(r5, o => Assert.True(o.Dy * o.Dy + o.Dx * o.Dx < 25 && (o.Dy > 0 || o.Dx > 0)));
        Assert.Empty(AffinityPairs.Offsets(1));
    }

    // Hand-made 4×4 label grid (255 = unsure).
    static readonly byte[] Grid =
    [
        0, 0, 1, 1,
        0, 255, 1, 1,
        2, 2, 255, 1,
        2, 2, 0, 0,
    ];

    [Fact]
    public void Pair_labels_on_a_4x4_grid_with_the_8_neighbourhood_are_the_brute_force_sets()
    {
        using var scope = torch.NewDisposeScope();
        var (from, to) = AffinityPairs.Indices(4, 4, 2);
        Assert.Equal(42, from.Length);                   // 12 horizontal + 12 vertical + 9 + 9 diagonal
        // Brute force: every unordered pair at Euclidean distance < 2, classified by hand rules.
        var bg = new HashSet<(long, long)>(); var fg = new HashSet<(long, long)>(); var neg = new HashSet<(long, long)>(); var all = new HashSet<(long, long)>();
        for (int i = 0; i < 16; i++)
            for (int j = i + 1; j < 16; j++)
            {
                int dy = j / 4 - i / 4, dx = j % 4 - i % 4;
                if (dy * dy + dx * dx >= 4) continue;
                all.Add((i, j));
                byte a = Grid[i], b = Grid[j];
                if (a == 255 || b == 255) continue;
                if (a != b) neg.Add((i, j)); else if (a == 0) bg.Add((i, j)); else fg.Add((i, j));
            }
        Assert.Equal(all, from.Zip(to, (f, t) => (Math.Min(f, t), Math.Max(f, t))).ToHashSet());
        // Spot checks by hand: (0,1) both bg; (2,3) both class 1; (1,2) bg vs 1; (4,5) touches 255; (14,15) bg; (13,14) 2 vs 0.
        Assert.Contains((0L, 1L), bg); Assert.Contains((2L, 3L), fg); Assert.Contains((1L, 2L), neg);
        Assert.True(all.Contains((4L, 5L)) && !bg.Contains((4L, 5L)) && !fg.Contains((4L, 5L)) && !neg.Contains((4L, 5L)));
        Assert.Contains((14L, 15L), bg); Assert.Contains((13L, 14L), neg);
        Assert.Equal(4, bg.Count);                       // (0,1) (0,4) (1,4) (14,15)
        var labels = AffinityLabels.PairLabels(torch.tensor(Grid.Select(v => (long)v).ToArray()).reshape(1, 16), torch.tensor(from), torch.tensor(to));
        HashSet<(long, long)> Set(Tensor mask)
        {
            var m = mask[0].data<float>().ToArray();
            return Enumerable.Range(0, m.Length).Where(p => m[p] == 1f).Select(p => (Math.Min(from[p], to[p]), Math.Max(from[p], to[p]))).ToHashSet();
        }
        Assert.Equal(bg, Set(labels.BackgroundPositive));
        Assert.Equal(fg, Set(labels.ForegroundPositive));
        Assert.Equal(neg, Set(labels.Negative));
    }

    [Fact]
    public void Loss_matches_a_hand_computation()
    {
        using var scope = torch.NewDisposeScope();
        var aff = torch.tensor(new float[] { 0.9f, 0.5f, 0.2f, 0.8f }).reshape(1, 4);
        var labels = new AffinityPairLabels(torch.tensor(new float[] { 1, 0, 0, 0 }).reshape(1, 4), torch.tensor(new float[] { 0, 1, 0, 0 }).reshape(1, 4),
                                            torch.tensor(new float[] { 0, 0, 1, 1 }).reshape(1, 4));
        var terms = AffinityLoss.Compute(aff, labels);
        double bg = -Math.Log(0.9 + 1e-5) / (1 + 1e-5), fg = -Math.Log(0.5 + 1e-5) / (1 + 1e-5);
        double neg = (-Math.Log(1 + 1e-5 - 0.2) - Math.Log(1 + 1e-5 - 0.8)) / (2 + 1e-5);
        Assert.Equal(bg, terms.BackgroundPositive.item<float>(), 5);
        Assert.Equal(fg, terms.ForegroundPositive.item<float>(), 5);
        Assert.Equal(neg, terms.Negative.item<float>(), 5);
        Assert.Equal(bg / 4 + fg / 4 + neg / 2, terms.Total.item<float>(), 5);
    }

    static double[,] HandTransition(double[,] a, double beta)
    {
        int n = a.GetLength(0);
        var t = new double[n, n];
        for (int j = 0; j < n; j++)
        {
            double col = 0;
            for (int i = 0; i < n; i++) col += Math.Pow(a[i, j], beta);
            for (int i = 0; i < n; i++) t[i, j] = Math.Pow(a[i, j], beta) / col;
        }
        return t;
    }

    static double[] HandWalk(double[] v, double[,] t, int steps)
    {
        int n = v.Length;
        for (int s = 0; s < steps; s++)
        {
            var next = new double[n];
            for (int j = 0; j < n; j++) for (int i = 0; i < n; i++) next[j] += v[i] * t[i, j];
            v = next;
        }
        return v;
    }

    [Fact]
    public void Random_walk_on_a_three_node_graph_matches_the_matrix_power()
    {
        using var scope = torch.NewDisposeScope();
        // Chain 0 – 1 – 2 with affinities 0.5 and 0.25 (pairs within radius), 1 on the diagonal.
        var dense = RandomWalk.DenseAffinity(torch.tensor(new float[] { 0.5f, 0.25f }), torch.tensor(new long[] { 0, 1 }), torch.tensor(new long[] { 1, 2 }), 3);
        var a = new double[,] { { 1, 0.5, 0 }, { 0.5, 1, 0.25 }, { 0, 0.25, 1 } };
        Assert.Equal(a.Cast<double>().Select(x => (float)x).ToArray(), dense.data<float>().ToArray());
        // β = 2: A∘A = [[1, .25, 0], [.25, 1, .0625], [0, .0625, 1]], column sums 1.25, 1.3125, 1.0625.
        var t = RandomWalk.TransitionMatrix(dense, 2);
        Assert.Equal(0.25 / 1.3125, t[0, 1].item<float>(), 6);
        Assert.Equal(0.0625 / 1.0625, t[1, 2].item<float>(), 6);
        var scores = torch.tensor(new float[] { 1, 0, 0, 0, 0, 1 }).reshape(2, 3);
        foreach (var (beta, logT) in new[] { (2.0, 1), (2.0, 3), (1.0, 3), (8.0, 2) })
        {
            var tb = RandomWalk.TransitionMatrix(dense, beta);
            var hand = HandTransition(a, beta);
            var squaring = RandomWalk.BySquaring(scores, tb, logT);
            var products = RandomWalk.ByProducts(scores, tb, logT);
            for (int k = 0; k < 2; k++)
            {
                var expected = HandWalk(k == 0 ? [1, 0, 0] : [0, 0, 1], hand, 1 << logT);
                for (int j = 0; j < 3; j++)
                {
                    Assert.Equal(expected[j], squaring[k, j].item<float>(), 5);
                    Assert.Equal(expected[j], products[k, j].item<float>(), 5);
                }
            }
        }
        // β and t change the result as computed: mass of node 0 reaching node 2.
        double Reach(double beta, int logT) => HandWalk([1, 0, 0], HandTransition(a, beta), 1 << logT)[2];
        Assert.Equal(Reach(1, 3), RandomWalk.Propagate(scores, RandomWalk.TransitionMatrix(dense, 1), 3)[0, 2].item<float>(), 5);
        Assert.True(Reach(8, 3) < Reach(1, 3) && Reach(1, 1) < Reach(1, 3));
    }

    [Fact]
    public void Downsample_takes_the_most_frequent_label_of_each_cell()
    {
        using var scope = torch.NewDisposeScope();
        var masks = torch.tensor(new long[]
        {
            0, 0, 3, 3,
            0, 5, 3, 255,
            255, 255, 5, 5,
            255, 1, 0, 5,
        }).reshape(1, 4, 4);
        var grid = AffinityLabels.Downsample(masks, 2, 2, numClasses: 20);
        Assert.Equal(new long[] { 0, 3, 255, 5 }, grid.data<long>().ToArray());
    }

    [Fact]
    public void Affinity_labels_from_maps_by_thresholds_and_by_alpha_powers()
    {
        // Two classes (3, 7), four pixels: max scores 0.9 (class 7), 0.3 (class 3), 0.05 (class 3), 0.6 (class 7).
        var maps = new CamMaps("x", [0.1f, 0.3f, 0.05f, 0.2f, 0.9f, 0.1f, 0.0f, 0.6f], [3, 7], 1, 4);
        var byThresholds = AffinityLabels.FromMaps(maps, null, new AffinityLabelConfig { Mode = AffinityLabelMode.Thresholds, LowThreshold = 0.25f, HighThreshold = 0.7f });
        Assert.Equal(new byte[] { 7, 255, 0, 255 }, byThresholds.Labels);
        // α = 1: bg = 1 − m → fg where m > 0.5; α = 12: bg = (1 − m)^12 → bg where (1 − m)^12 ≥ m: only m = 0.05 (0.95^12 = 0.54).
        var byPowers = AffinityLabels.FromMaps(maps, null, new AffinityLabelConfig { Mode = AffinityLabelMode.AlphaPowers, UseCrf = false, LowAlpha = 1, HighAlpha = 12 });
        Assert.Equal(new byte[] { 7, 255, 0, 7 }, byPowers.Labels);
        // PSA's powers 4 / 32: 0.3 > 0.7^4 = 0.24 → class 3 (and 0.7^32 ≈ 1e-5 is no background); m = 0.05: 0.95^4 = 0.81 → unsure at
        // α = 4, but 0.95^32 = 0.19 > 0.05 → background at α = 32.
        var psa = AffinityLabels.FromMaps(maps, null, new AffinityLabelConfig { Mode = AffinityLabelMode.AlphaPowers, UseCrf = false, LowAlpha = 4, HighAlpha = 32 });
        Assert.Equal(new byte[] { 7, 3, 0, 7 }, psa.Labels);
    }

    [Fact]
    public void Crf_on_maps_with_zero_kernel_weights_is_the_threshold_argmax()
    {
        var rng = new Random(3);
        var values = Enumerable.Range(0, 2 * 6 * 5).Select(_ => (float)rng.NextDouble()).ToArray();
        var maps = new CamMaps("x", values, [4, 9], 5, 6);
        var image = new RgbImage(6, 5);
        var options = new CrfMapOptions { Threshold = 0.45f, Crf = new DenseCrfConfig { GaussianWeight = 0, BilateralWeight = 0, Iterations = 3 } };
        var crf = CrfPostProcessing.RefineMaps(maps, image, options);
        Assert.Equal(WeakSeg.PseudoLabels.CamToLabel.Convert(maps, 0.45f).Labels, crf.Labels);
        Assert.Contains((byte)9, crf.Labels);
        Assert.Contains((byte)0, crf.Labels);
    }
}
