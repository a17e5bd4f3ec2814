// peerchat's Android activity: the Dioxus webview activity plus a network-change hook.
//
// Android lets apps learn about network changes only through ConnectivityManager, so this
// activity watches the default network and tells the Rust side (peerchat-mobile's
// `network` module) through JNI whenever it changes or is lost; the core restarts its
// connections from there.
//
// dx copies this file as is (Dioxus.toml: [application] android_main_activity): the
// package and class name are the ones dx's manifest names, and the BuildConfig alias
// must name the application id from Dioxus.toml's [bundle] identifier.
package dev.dioxus.main

import android.net.ConnectivityManager
import android.net.Network
import android.os.Bundle

typealias BuildConfig = org.peerchat.app.BuildConfig

class MainActivity : WryActivity() {
    private lateinit var connectivity: ConnectivityManager

    private val defaultNetworkWatcher = object : ConnectivityManager.NetworkCallback() {
        // The network in use when the watch began; registering reports it once, which
        // is not a change. Callbacks arrive on a ConnectivityManager thread.
        @Volatile
        var current: Network? = null

        override fun onAvailable(network: Network) {
            if (network != current) {
                current = network
                onNetworkChanged()
            }
        }

        override fun onLost(network: Network) {
            if (network == current) {
                current = null
            }
            onNetworkChanged()
        }
    }

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        connectivity = getSystemService(CONNECTIVITY_SERVICE) as ConnectivityManager
        defaultNetworkWatcher.current = connectivity.activeNetwork
        connectivity.registerDefaultNetworkCallback(defaultNetworkWatcher)
    }

    override fun onDestroy() {
        connectivity.unregisterNetworkCallback(defaultNetworkWatcher)
        super.onDestroy()
    }

    // Implemented in Rust: Java_dev_dioxus_main_MainActivity_onNetworkChanged in
    // platforms/mobile/src/network.rs. The library is loaded by WryActivity.
    private external fun onNetworkChanged()
}
